using Overlay.Identity;

namespace Overlay.Host.Cli;

/// <summary>
/// The <c>key</c> verb: creates an identity key in a directory's <c>keys/identity.key</c> (as a node
/// does on its first start: 0700 directory, 0600 file), or loads the one there, and prints its
/// public key (the node id, or the authority key for <c>Overlay:Network:Authorities</c>). Lets an
/// operator know an authority's keys before any node starts, e.g. to put them in Kubernetes Secrets.
/// </summary>
internal static class KeyCommand
{
    public static int Run(IReadOnlyList<string> args, TextWriter output, TextWriter error)
    {
        if (args is not [var directory] || directory.StartsWith('-'))
        {
            error.WriteLine("key: one argument, the directory to hold keys/identity.key");
            return 2;
        }

        try
        {
            using var identity = NodeIdentity.LoadOrCreate(directory);
            output.WriteLine(identity.Id.ToString());
            return 0;
        }
        catch (Exception exception) when (exception is InvalidOperationException or InvalidDataException or IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"key: {exception.Message}");
            return 1;
        }
    }
}
