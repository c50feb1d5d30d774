using System.Runtime.Versioning;
using Overlay.Identity;
using YamlDotNet.RepresentationModel;
using static Overlay.Deploy.Tests.DeployFilesTests;

namespace Overlay.Deploy.Tests;

/// <summary>
/// The StatefulSet's volume and the node's key directory agree: the node keeps its keys in
/// <c>keys/</c> of the data directory, 0700 with 0600 files, and refuses to start otherwise, so the
/// kubelet must not re-apply the fsGroup's group read/write to the volume at every mount.
/// </summary>
public sealed class DataVolumeTests : IDisposable
{
    private const UnixFileMode GroupReadWrite = UnixFileMode.GroupRead | UnixFileMode.GroupWrite;
    private const UnixFileMode GroupAll = GroupReadWrite | UnixFileMode.GroupExecute;

    private readonly string _volume = Path.Combine(Path.GetTempPath(), "overlay-volume-" + Guid.NewGuid().ToString("N"));

    public DataVolumeTests() => Directory.CreateDirectory(_volume);

    public void Dispose() => Directory.Delete(_volume, recursive: true);

    [Fact]
    public void The_data_volume_is_the_data_directory_and_nothing_else_is_mounted_over_the_keys()
    {
        var spec = PodSpec();
        var container = (YamlMappingNode)((YamlSequenceNode)spec["containers"])[0];
        var mounts = ((YamlSequenceNode)container["volumeMounts"]).Cast<YamlMappingNode>().ToList();
        var dataMount = Scalar(mounts.Single(m => Scalar(m, "name") == "data"), "mountPath")!;
        var config = (YamlMappingNode)At(LoadYaml("k8s/configmap.yaml"), "data");

        Assert.Equal(dataMount, Scalar(config, "Overlay__DataDirectory"));
        Assert.Contains($"Overlay__DataDirectory={dataMount}", File.ReadAllText(Path.Combine(Repo.Root, "deploy", "Dockerfile")), StringComparison.Ordinal);

        // A mount at or under keys/ (a Secret, say) would not be the node's own 0700 directory.
        var keys = KeyDirectory.PathIn(dataMount);
        foreach (var mount in mounts.Select(m => Scalar(m, "mountPath")!))
        {
            Assert.False(mount == keys || mount.StartsWith(keys + "/", StringComparison.Ordinal), $"{mount} is mounted over the node's key directory {keys}");
        }

        // The control token is not a key: it must never be expected inside keys/.
        foreach (var name in new[] { "Overlay__Control__TokenFile", "OVERLAY_TOKEN_FILE" })
        {
            Assert.False(Scalar(config, name)!.StartsWith(keys + "/", StringComparison.Ordinal), $"{name} points into the key directory");
        }
    }

    [Fact]
    public void The_pod_runs_as_one_user_and_the_kubelet_leaves_the_keys_alone_after_the_first_mount()
    {
        var context = (YamlMappingNode)PodSpec()["securityContext"];
        Assert.Equal("true", Scalar(context, "runAsNonRoot"));
        Assert.NotNull(Scalar(context, "runAsUser"));
        Assert.NotNull(Scalar(context, "fsGroup"));
        // Without it the kubelet adds group read/write to every file of the volume at every mount, and the
        // node refuses its group-readable keys after a restart (shown below).
        Assert.Equal("OnRootMismatch", Scalar(context, "fsGroupChangePolicy"));
    }

    [Fact]
    public void A_node_restarted_on_the_same_volume_under_the_manifests_policy_starts_with_the_same_identity()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var policy = Scalar(PodSpec(), "securityContext", "fsGroupChangePolicy") ?? "Always";

        // First mount: the volume root does not match yet, so the kubelet changes it (and all it holds).
        MountWithFsGroup(policy);
        NodeId first;
        using (var identity = NodeIdentity.LoadOrCreate(_volume))
        {
            first = identity.Id;
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(KeyDirectory.PathIn(_volume)));

        // The pod restarts: the kubelet mounts the volume again under the manifest's policy.
        MountWithFsGroup(policy);
        using (var identity = NodeIdentity.LoadOrCreate(_volume))
        {
            Assert.Equal(first, identity.Id);
        }

        // Under the default policy (Always) the same restart would stop the node.
        MountWithFsGroup("Always");
        var error = Assert.Throws<InvalidOperationException>(() => NodeIdentity.LoadOrCreate(_volume));
        Assert.Contains(KeyDirectory.PathIn(_volume), error.Message, StringComparison.Ordinal);
    }

    private static YamlMappingNode PodSpec() => (YamlMappingNode)At(LoadYaml("k8s/statefulset.yaml"), "spec", "template", "spec");

    /// <summary>
    /// What the kubelet does to a volume with fsGroup (group ownership is not changed here, which needs
    /// privileges; the node checks modes and the owner, not the group): unless the policy is OnRootMismatch
    /// and the root already matches, every directory gains group rwx and set-group-id, every file group rw.
    /// </summary>
    [UnsupportedOSPlatform("windows")]
    private void MountWithFsGroup(string policy)
    {
        var root = File.GetUnixFileMode(_volume);
        if (policy == "OnRootMismatch" && (root & (GroupAll | UnixFileMode.SetGroup)) == (GroupAll | UnixFileMode.SetGroup))
        {
            return;
        }

        File.SetUnixFileMode(_volume, root | GroupAll | UnixFileMode.SetGroup);
        foreach (var entry in Directory.EnumerateFileSystemEntries(_volume, "*", SearchOption.AllDirectories))
        {
            var directory = Directory.Exists(entry);
            File.SetUnixFileMode(entry, File.GetUnixFileMode(entry) | (directory ? GroupAll | UnixFileMode.SetGroup : GroupReadWrite));
        }
    }
}
