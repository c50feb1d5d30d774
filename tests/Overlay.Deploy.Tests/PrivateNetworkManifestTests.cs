using System.Globalization;
using YamlDotNet.RepresentationModel;
using static Overlay.Deploy.Tests.DeployFilesTests;
using static Overlay.Deploy.Tests.PrivateManifests;

namespace Overlay.Deploy.Tests;

/// <summary>
/// deploy/k8s-private: the authority's signing key reaches the authority's pod alone, node pods read
/// the join token read-only and join over TLS, and the token every pod can read admits a bounded
/// number of nodes for a bounded time.
/// </summary>
public sealed class PrivateNetworkManifestTests
{
    private readonly IReadOnlyDictionary<string, YamlMappingNode> _workloads = Workloads();

    private YamlMappingNode AuthoritySpec => PodSpec(_workloads[AuthorityWorkload]);

    private YamlMappingNode NodeSpec => PodSpec(_workloads[NodeWorkload]);

    [Fact]
    public void The_overlay_names_files_that_exist_and_keeps_the_open_network_manifests()
    {
        var kustomization = LoadYaml($"{PrivateManifests.OverlayDirectory}/kustomization.yaml");
        Assert.Contains(BaseReference, ((YamlSequenceNode)kustomization["resources"]).Select(r => r.ToString()));
        Assert.All(Files(), file => Assert.True(File.Exists(Path.Combine(Repo.Root, "deploy", file)), $"{file} is missing"));
        // The base stays an open network: no authority, nothing to join.
        Assert.DoesNotContain(LoadYamlText("k8s/configmap.yaml"), "Overlay__Network__Authorities", StringComparison.Ordinal);
        Assert.DoesNotContain(LoadYamlText("k8s/statefulset.yaml"), "Overlay__Membership", StringComparison.Ordinal);
    }

    [Fact]
    public void The_authority_key_Secret_is_mounted_only_in_the_authority_workload_and_only_by_its_init_container()
    {
        foreach (var (name, workload) in _workloads)
        {
            var secretVolumes = Entries(PodSpec(workload), "volumes").Where(v => v.Children.ContainsKey("secret") && Scalar(v, "secret", "secretName") == AuthorityKeySecret);
            if (name == AuthorityWorkload)
            {
                Assert.Single(secretVolumes);
            }
            else
            {
                Assert.Empty(secretVolumes);
            }
        }

        var spec = AuthoritySpec;
        var keyVolume = Entries(spec, "volumes").Single(v => v.Children.ContainsKey("secret") && Scalar(v, "secret", "secretName") == AuthorityKeySecret);
        var keyVolumeName = Scalar(keyVolume, "name");
        Assert.Equal("0440", Scalar(keyVolume, "secret", "defaultMode"));
        var init = Entries(spec, "initContainers").Single();
        Assert.Contains(Entries(init, "volumeMounts"), m => Scalar(m, "name") == keyVolumeName && Scalar(m, "readOnly") == "true");
        var node = Container(spec, "node");
        Assert.DoesNotContain(Entries(node, "volumeMounts"), m => Scalar(m, "name") == keyVolumeName);

        // The node reads the copy from a memory-backed volume, read-only, at its AuthorityKeyDirectory.
        var directory = PodEnvironment(node, "overlay-authority-0", (_, _) => "")["Overlay__Membership__AuthorityKeyDirectory"];
        var copy = Entries(node, "volumeMounts").Single(m => Scalar(m, "mountPath") == directory);
        Assert.Equal("true", Scalar(copy, "readOnly"));
        Assert.Equal("Memory", Scalar(Entries(spec, "volumes").Single(v => Scalar(v, "name") == Scalar(copy, "name")), "emptyDir", "medium"));

        // No node pod has the authority's key directory, or is an authority.
        var nodeEnvironment = PodEnvironment(Container(NodeSpec, "node"), "overlay-0", (_, _) => "");
        Assert.DoesNotContain("Overlay__Membership__AuthorityKeyDirectory", nodeEnvironment.Keys);
        Assert.DoesNotContain(nodeEnvironment.Keys, k => k.StartsWith("Overlay__Membership__Tokens", StringComparison.Ordinal));
    }

    [Fact]
    public void Node_pods_mount_the_join_token_read_only_and_join_the_authority_over_TLS()
    {
        var node = Container(NodeSpec, "node");
        var environment = PodEnvironment(node, "overlay-0", (_, _) => "");
        var tokenVolume = Entries(NodeSpec, "volumes").Single(v => v.Children.ContainsKey("secret") && Scalar(v, "secret", "secretName") == JoinTokenSecret);
        Assert.Equal("0440", Scalar(tokenVolume, "secret", "defaultMode"));
        var mount = Entries(node, "volumeMounts").Single(m => Scalar(m, "name") == Scalar(tokenVolume, "name"));
        Assert.Equal("true", Scalar(mount, "readOnly"));
        Assert.StartsWith(Scalar(mount, "mountPath") + "/", environment["Overlay__Membership__TokenFile"], StringComparison.Ordinal);

        var join = new Uri(environment["Overlay__Membership__JoinUrl"]);
        Assert.Equal(Uri.UriSchemeHttps, join.Scheme);
        var authority = PodEnvironment(Container(AuthoritySpec, "node"), "overlay-authority-0", (_, _) => "");
        Assert.Equal(new Uri(authority["Overlay__Link__AdvertisedUrl"]), join);
        Assert.StartsWith("https://", authority["Overlay__Link__Url"], StringComparison.Ordinal);
        Assert.Contains(environment, e => e.Key.StartsWith("Overlay__Network__Authorities__", StringComparison.Ordinal));
        Assert.Equal(
            environment.Where(e => e.Key.StartsWith("Overlay__Network__Authorities__", StringComparison.Ordinal)).OrderBy(e => e.Key),
            authority.Where(e => e.Key.StartsWith("Overlay__Network__Authorities__", StringComparison.Ordinal)).OrderBy(e => e.Key));
    }

    [Fact]
    public void The_token_every_pod_reads_admits_a_bounded_number_of_nodes_for_a_bounded_time()
    {
        var node = Container(AuthoritySpec, "node");
        var tokens = Entries(node, "env").Where(e => Scalar(e, "name")!.StartsWith("Overlay__Membership__Tokens__0__", StringComparison.Ordinal))
            .ToDictionary(e => Scalar(e, "name")!["Overlay__Membership__Tokens__0__".Length..], e => e);

        // The value is the Secret the node pods mount, never written in a manifest.
        Assert.Equal(JoinTokenSecret, Scalar(tokens["Value"], "valueFrom", "secretKeyRef", "name"));
        var uses = int.Parse(Scalar(tokens["Uses"], "value")!, CultureInfo.InvariantCulture);
        var replicas = int.Parse(Scalar(_workloads[NodeWorkload], "spec", "replicas")!, CultureInfo.InvariantCulture);
        Assert.InRange(uses, 1, replicas);
        // An operator must set the expiry: the manifest holds a placeholder the node would refuse, not a date that goes stale.
        Assert.StartsWith("REPLACE-WITH-", Scalar(tokens["ExpiresAt"], "value"), StringComparison.Ordinal);
    }

    [Fact]
    public void The_authority_pod_is_locked_down_like_the_nodes()
    {
        var spec = AuthoritySpec;
        Assert.Equal("false", Scalar(spec, "automountServiceAccountToken")); // it holds the signing key
        Assert.Equal("true", Scalar(spec, "securityContext", "runAsNonRoot"));
        Assert.Equal(Scalar(NodeSpec, "securityContext", "runAsUser"), Scalar(spec, "securityContext", "runAsUser"));
        Assert.Equal("OnRootMismatch", Scalar(spec, "securityContext", "fsGroupChangePolicy"));
        foreach (var container in Entries(spec, "containers").Concat(Entries(spec, "initContainers")))
        {
            Assert.Equal("true", Scalar(container, "securityContext", "readOnlyRootFilesystem"));
            Assert.Equal("false", Scalar(container, "securityContext", "allowPrivilegeEscalation"));
        }

        Assert.Equal("1", Scalar(_workloads[AuthorityWorkload], "spec", "replicas"));
        // Its selector must not overlap the nodes' StatefulSet's.
        Assert.NotEqual(Scalar(_workloads[AuthorityWorkload], "spec", "selector", "matchLabels", "app.kubernetes.io/name"),
            Scalar(_workloads[NodeWorkload], "spec", "selector", "matchLabels", "app.kubernetes.io/name"));
    }

    [Fact]
    public async Task Kustomize_builds_the_overlay_as_these_tests_read_it()
    {
        // No cluster needed, but kubectl: where it is missing, the merge above stands alone.
        var kubectl = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(directory => Path.Combine(directory, "kubectl")).FirstOrDefault(File.Exists);
        if (kubectl is null)
        {
            return;
        }

        var result = await Processes.RunAsync(kubectl, ["kustomize", Path.Combine("deploy", PrivateManifests.OverlayDirectory)], TestTimeouts.Seconds(60));
        Assert.True(result.ExitCode == 0 && result.ErrorOutput.Length == 0, result.Output);
        var stream = new YamlStream();
        stream.Load(new StringReader(result.Output));
        var rendered = stream.Documents.Select(d => (YamlMappingNode)d.RootNode)
            .Where(d => Scalar(d, "kind") == "StatefulSet").ToDictionary(d => Scalar(d, "metadata", "name")!);

        Assert.Equal(_workloads.Keys.Order(), rendered.Keys.Order());
        foreach (var (name, workload) in rendered)
        {
            var spec = PodSpec(workload);
            Assert.Equal(Volumes(PodSpec(_workloads[name])), Volumes(spec));
            foreach (var container in Entries(spec, "containers").Concat(Entries(spec, "initContainers")))
            {
                var read = Container(PodSpec(_workloads[name]), Scalar(container, "name")!, Entries(spec, "containers").Contains(container) ? "containers" : "initContainers");
                Assert.Equal(Mounts(read), Mounts(container));
                Assert.Equal(Entries(read, "env").Select(e => Scalar(e, "name")).Order(), Entries(container, "env").Select(e => Scalar(e, "name")).Order());
            }
        }

        static IEnumerable<string> Volumes(YamlMappingNode spec) => Entries(spec, "volumes").Select(v => Scalar(v, "name")!).Order();

        static IEnumerable<string> Mounts(YamlMappingNode container) => Entries(container, "volumeMounts")
            .Select(m => $"{Scalar(m, "name")}:{Scalar(m, "mountPath")}:{(m.Children.ContainsKey("readOnly") ? Scalar(m, "readOnly") : "false")}").Order();
    }

    private static string LoadYamlText(string file) => File.ReadAllText(Path.Combine(Repo.Root, "deploy", file));
}
