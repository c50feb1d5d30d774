using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;
using static Overlay.Deploy.Tests.DeployFilesTests;
using static Overlay.Deploy.Tests.PrivateManifests;

namespace Overlay.Deploy.Tests;

/// <summary>
/// deploy/k8s-private run as processes, without a cluster: each pod is a directory standing for its
/// filesystem, with the Secrets and volumes at the manifests' mount paths; the authority's init
/// container runs its script; every node runs with its pod's environment (the ConfigMap and the
/// container's env), only the cluster names and ports mapped to loopback. The Secrets are made as
/// docs/operations.md says (<c>Overlay.Host key</c>), and <c>overlay members list</c> checks the result.
/// </summary>
public sealed partial class PrivateNetworkJoinTests(ITestOutputHelper log) : IDisposable
{
    private const string Authority = "overlay-authority-0";
    private static readonly string[] Nodes = ["overlay-0", "overlay-1"];

    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("overlay-k8s-private-");
    private readonly Dictionary<string, int> _linkPorts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _controlPorts = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Secret, string Key), byte[]> _secrets = [];

    public void Dispose() => _root.Delete(recursive: true);

    [Fact]
    public async Task An_authority_and_two_node_pods_laid_out_as_the_manifests_say_all_become_members()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var workloads = Workloads();
        var basePort = Ports.FreeRange(6);
        foreach (var (pod, i) in Nodes.Prepend(Authority).Select((p, i) => (p, i)))
        {
            _linkPorts[pod] = basePort + i;
            _controlPorts[pod] = basePort + 3 + i;
        }

        // The Secrets, as the operator creates them: two keys made with the node's own verb, random tokens.
        var authorityKey = await CreateKeyAsync("authority-key");
        var authorityNodeId = await CreateKeyAsync("authority-node");
        _secrets[(AuthorityKeySecret, "authority.key")] = File.ReadAllBytes(Path.Combine(_root.FullName, "authority-key", "keys", "identity.key"));
        _secrets[(AuthorityKeySecret, "node.key")] = File.ReadAllBytes(Path.Combine(_root.FullName, "authority-node", "keys", "identity.key"));
        _secrets[(JoinTokenSecret, "token")] = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)));
        _secrets[("overlay-control-token", "token")] = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)));
        var placeholders = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["REPLACE-WITH-THE-AUTHORITY-KEY"] = authorityKey,
            ["REPLACE-WITH-THE-AUTHORITY-NODE-ID"] = authorityNodeId,
            ["REPLACE-WITH-AN-EXPIRY"] = DateTimeOffset.UtcNow.AddHours(1).ToString("O", CultureInfo.InvariantCulture),
        };

        var authoritySpec = PodSpec(workloads[AuthorityWorkload]);
        LayOutVolumes(Authority, authoritySpec);
        await RunInitContainersAsync(Authority, authoritySpec);
        await using var authority = StartPod(Authority, authoritySpec, placeholders);
        await WaitHealthyAsync(Authority, authority);

        var nodeSpec = PodSpec(workloads[NodeWorkload]);
        var nodes = new List<RunningProcess>();
        try
        {
            foreach (var pod in Nodes)
            {
                LayOutVolumes(pod, nodeSpec);
                nodes.Add(StartPod(pod, nodeSpec, placeholders));
            }

            foreach (var (pod, process) in Nodes.Zip(nodes))
            {
                await WaitHealthyAsync(pod, process);
            }

            var nodeIds = new List<string>();
            foreach (var pod in Nodes)
            {
                nodeIds.Add(await CreateKeyAsync(Path.Combine(pod, "data"))); // loads the key the node created
            }

            // `overlay members list` at the authority lists both nodes; each node holds a membership and knows the other node and the
            // authority (under the node id its Secret seeded).
            var listed = await WaitForMembersAsync(Authority, nodeIds);
            Assert.Contains($"this node: member until", listed, StringComparison.Ordinal);
            for (var i = 0; i < Nodes.Length; i++)
            {
                var own = await WaitForMembersAsync(Nodes[i], [nodeIds[1 - i], authorityNodeId]);
                Assert.Contains($"(authority {authorityKey[..8]})", own, StringComparison.Ordinal);
            }

            // Two joins spent two of the token's uses, counted at the authority alone.
            var ledger = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(PodPath(Authority, "/data/membership-tokens.json")))!;
            Assert.Equal(2, Assert.Single(ledger).Value);
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }
        }
    }

    private string PodPath(string pod, string absolute) => Path.Combine(_root.FullName, pod) + absolute;

    // Volumes as the kubelet mounts them: Secrets as files with the volume's mode, everything else an empty directory.
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private void LayOutVolumes(string pod, YamlMappingNode spec)
    {
        var volumes = Entries(spec, "volumes").ToDictionary(v => Scalar(v, "name")!);
        var containers = Entries(spec, "containers").Concat(Entries(spec, "initContainers"));
        var claims = new HashSet<string>(StringComparer.Ordinal) { "data" };
        foreach (var mount in containers.SelectMany(c => Entries(c, "volumeMounts")))
        {
            var path = PodPath(pod, Scalar(mount, "mountPath")!);
            Directory.CreateDirectory(path);
            var name = Scalar(mount, "name")!;
            if (!claims.Contains(name) && volumes[name].Children.ContainsKey("secret"))
            {
                var secretName = Scalar(volumes[name], "secret", "secretName")!;
                var mode = (UnixFileMode)Convert.ToInt32(Scalar(volumes[name], "secret", "defaultMode")!, 8);
                foreach (var ((secret, key), value) in _secrets.Where(s => s.Key.Secret == secretName))
                {
                    File.WriteAllBytes(Path.Combine(path, key), value);
                    File.SetUnixFileMode(Path.Combine(path, key), mode);
                }
            }
        }
    }

    private async Task RunInitContainersAsync(string pod, YamlMappingNode spec)
    {
        foreach (var init in Entries(spec, "initContainers"))
        {
            var command = ((YamlSequenceNode)init["command"]).Select(c => c.ToString()).ToList();
            Assert.Equal(["sh", "-c"], command[..2]);
            // The script's paths are the init container's mount paths: the same paths under the pod's directory.
            var mounts = Entries(init, "volumeMounts").Select(m => Regex.Escape(Scalar(m, "mountPath")!)).OrderByDescending(m => m.Length);
            var script = Regex.Replace(command[2], $@"(?<![\w/.-])({string.Join('|', mounts)})(?=/|\s|$)", m => PodPath(pod, m.Value));
            var result = await Processes.RunAsync("sh", ["-c", script], TestTimeouts.Seconds(30), log: log);
            Assert.True(result.ExitCode == 0, $"init container {Scalar(init, "name")} failed:\n{result.Output}");
        }
    }

    private RunningProcess StartPod(string pod, YamlMappingNode spec, IReadOnlyDictionary<string, string> placeholders)
    {
        var environment = PodEnvironment(Container(spec, "node"), pod, (secret, key) => Encoding.UTF8.GetString(_secrets[(secret, key)]));
        foreach (var (name, value) in environment.ToList())
        {
            var mapped = placeholders.GetValueOrDefault(value, value);
            mapped = ClusterName().Replace(mapped, m => $"127.0.0.1:{_linkPorts[m.Groups["pod"].Value].ToString(CultureInfo.InvariantCulture)}");
            environment[name] = mapped.StartsWith('/') ? PodPath(pod, mapped) : mapped;
        }

        // Loopback instead of the pod network: the ports of this test, and many nodes on one address.
        environment["Overlay__Link__Url"] = $"https://127.0.0.1:{_linkPorts[pod].ToString(CultureInfo.InvariantCulture)}";
        environment["Overlay__Link__HealthUrl"] = "http://127.0.0.1:0";
        environment["Overlay__Control__Url"] = $"http://127.0.0.1:{_controlPorts[pod].ToString(CultureInfo.InvariantCulture)}";
        environment["Overlay__Link__AllowedPeerNetworks__0"] = "127.0.0.0/8";
        environment["Overlay__Directory__MaxPeersPerAddressBlock"] = "1000000";
        environment["Overlay__Directory__GossipInterval"] = "00:00:01";
        Assert.DoesNotContain(environment.Values, v => v.Contains("REPLACE-WITH-", StringComparison.Ordinal) || v.Contains("cluster.local", StringComparison.Ordinal));
        return RunningProcess.Start(Processes.Dotnet, [Repo.BuiltHostDll], environment, log, pod);
    }

    private async Task WaitHealthyAsync(string pod, RunningProcess process)
    {
        var url = $"https://127.0.0.1:{_linkPorts[pod].ToString(CultureInfo.InvariantCulture)}";
        var result = await Processes.RunAsync(Processes.Dotnet, [Repo.BuiltHostDll, "health", "--url", url, "--timeout", TestTimeouts.Seconds(60).TotalSeconds.ToString("F0", CultureInfo.InvariantCulture)],
            TestTimeouts.Seconds(90), log: log);
        Assert.True(result.ExitCode == 0, $"{pod} did not become healthy:\n{process.Output}");
    }

    // `overlay members list` on the pod until it lists every id in expected (each run is a new CLI process).
    private async Task<string> WaitForMembersAsync(string pod, IReadOnlyList<string> expected)
    {
        using var deadline = TestTimeouts.After(90);
        var arguments = new[]
        {
            Repo.BuiltCliDll, "--node", $"http://127.0.0.1:{_controlPorts[pod].ToString(CultureInfo.InvariantCulture)}",
            "--token-file", PodPath(pod, "/etc/overlay/control/token"), "members", "list",
        };
        while (true)
        {
            var result = await Processes.RunAsync(Processes.Dotnet, arguments, TestTimeouts.Seconds(30), log: log);
            if (result.ExitCode == 0 && expected.All(id => result.Output.Contains(id, StringComparison.Ordinal)) && result.Output.Contains("this node: member until", StringComparison.Ordinal))
            {
                return result.Output;
            }

            Assert.False(deadline.IsCancellationRequested, $"{pod} never listed {string.Join(", ", expected)}; last:\n{result.Output}");
        }
    }

    // `Overlay.Host key DIRECTORY` (relative to the test's root): creates or loads the key, prints its public key.
    private async Task<string> CreateKeyAsync(string directory)
    {
        var result = await Processes.RunAsync(Processes.Dotnet, [Repo.BuiltHostDll, "key", Path.Combine(_root.FullName, directory)], TestTimeouts.Seconds(30), log: log);
        Assert.True(result.ExitCode == 0, result.Output);
        return result.Output.Trim();
    }

    [GeneratedRegex(@"(?<pod>[a-z0-9-]+)\.[a-z0-9-]+\.overlay\.svc\.cluster\.local:7400")]
    private static partial Regex ClusterName();
}
