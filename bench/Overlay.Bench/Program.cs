namespace Overlay.Bench;

internal static class Program
{
    private const string Usage = "usage: Overlay.Bench crypto [--quick]";

    private static int Main(string[] args) => args switch
    {
        ["crypto"] => CryptoCommand.Run(quick: false),
        ["crypto", "--quick"] => CryptoCommand.Run(quick: true),
        _ => PrintUsage(),
    };

    private static int PrintUsage()
    {
        Console.Error.WriteLine(Usage);
        return 2;
    }
}
