using System.Reflection;

namespace Overlay.Testing;

/// <summary>Where the repository and the built node are, found from the test's output directory.</summary>
internal static class Repo
{
    /// <summary>The directory holding Overlay.sln.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>The configuration these tests were built in (the node was built in the same one).</summary>
    public static string Configuration { get; } =
        typeof(Repo).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";

    /// <summary>The built node: run it with <c>dotnet</c>, never <c>dotnet run</c>.</summary>
    public static string HostDll => Path.Combine(Root, "src", "Overlay.Host", "bin", Configuration, "net10.0", "Overlay.Host.dll");

    /// <summary><see cref="HostDll"/>, which must have been built.</summary>
    public static string BuiltHostDll =>
        File.Exists(HostDll) ? HostDll : throw new FileNotFoundException($"{HostDll} is missing: build the solution in {Configuration} first", HostDll);

    /// <summary>The built <c>overlay</c> CLI (run it with <c>dotnet</c>).</summary>
    public static string BuiltCliDll =>
        Path.Combine(Root, "src", "Overlay.Cli", "bin", Configuration, "net10.0", "overlay.dll") is var path && File.Exists(path)
            ? path : throw new FileNotFoundException($"{path} is missing: build the solution in {Configuration} first", path);

    /// <summary>The published test vectors.</summary>
    public static string VectorDirectory => Path.Combine(Root, "docs", "vectors");

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Overlay.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"no Overlay.sln above {AppContext.BaseDirectory}");
    }
}
