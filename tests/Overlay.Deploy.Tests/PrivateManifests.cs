using YamlDotNet.RepresentationModel;
using static Overlay.Deploy.Tests.DeployFilesTests;

namespace Overlay.Deploy.Tests;

/// <summary>
/// The private-network variant of the Kubernetes manifests (deploy/k8s-private, a kustomize overlay
/// of deploy/k8s), read as the tests need it: the workloads, and each pod's container environment
/// with the overlay's patches applied the way kustomize merges them (containers by name, env and
/// volume lists appended).
/// </summary>
internal static class PrivateManifests
{
    public const string OverlayDirectory = "k8s-private";

    /// <summary>How the overlay names its base: a sibling directory (kustomize refuses an overlay inside its base).</summary>
    public const string BaseReference = "../k8s";
    public const string AuthorityWorkload = "overlay-authority";
    public const string NodeWorkload = "overlay";
    public const string AuthorityKeySecret = "overlay-authority-keys";
    public const string JoinTokenSecret = "overlay-join-token";

    /// <summary>The files the overlay's kustomization names (resources of its own and patches).</summary>
    public static IReadOnlyList<string> Files()
    {
        var kustomization = LoadYaml($"{OverlayDirectory}/kustomization.yaml");
        var resources = ((YamlSequenceNode)kustomization["resources"]).Select(r => r.ToString()).Where(r => r != BaseReference);
        var patches = ((YamlSequenceNode)kustomization["patches"]).Select(p => Scalar(p, "path")!);
        return [.. resources.Concat(patches).Select(f => $"{OverlayDirectory}/{f}")];
    }

    /// <summary>Every StatefulSet of the base and the overlay, with the overlay's patches merged in.</summary>
    public static IReadOnlyDictionary<string, YamlMappingNode> Workloads()
    {
        var workloads = new Dictionary<string, YamlMappingNode>(StringComparer.Ordinal);
        var patches = new List<YamlMappingNode>();
        var baseFiles = System.IO.Directory.GetFiles(Path.Combine(Repo.Root, "deploy", "k8s"), "*.yaml").Select(f => $"k8s/{Path.GetFileName(f)}");
        foreach (var (file, isPatch) in baseFiles.Select(f => (f, false)).Concat(Files().Select(f => (f, IsPatch(f)))))
        {
            var document = LoadYaml(file);
            if (Scalar(document, "kind") is not "StatefulSet" and not "Deployment")
            {
                continue;
            }

            if (isPatch)
            {
                patches.Add(document);
            }
            else
            {
                workloads.Add(Scalar(document, "metadata", "name")!, document);
            }
        }

        foreach (var patch in patches)
        {
            Merge(workloads[Scalar(patch, "metadata", "name")!], patch);
        }

        return workloads;
    }

    /// <summary>The pod spec of a workload.</summary>
    public static YamlMappingNode PodSpec(YamlMappingNode workload) => (YamlMappingNode)At(workload, "spec", "template", "spec");

    /// <summary>A container (or init container) of a pod spec by name.</summary>
    public static YamlMappingNode Container(YamlMappingNode podSpec, string name, string list = "containers") =>
        ((YamlSequenceNode)podSpec[list]).Cast<YamlMappingNode>().Single(c => Scalar(c, "name") == name);

    /// <summary>The entries of a sequence under <paramref name="key"/>, none when it is absent.</summary>
    public static IEnumerable<YamlMappingNode> Entries(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var list) ? ((YamlSequenceNode)list).Cast<YamlMappingNode>() : [];

    /// <summary>The ConfigMap's data, the overlay's patch applied.</summary>
    public static Dictionary<string, string> ConfigMapData()
    {
        var data = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in new[] { "k8s/configmap.yaml" }.Concat(Files().Where(f => Scalar(LoadYaml(f), "kind") == "ConfigMap")))
        {
            foreach (var (key, value) in (YamlMappingNode)At(LoadYaml(file), "data"))
            {
                data[key.ToString()] = value.ToString();
            }
        }

        return data;
    }

    /// <summary>
    /// A container's environment as the kubelet builds it: the ConfigMap (envFrom), then env in order,
    /// with $(NAME) references, the pod's name and Secret keys (<paramref name="secret"/>: name, key → value) resolved.
    /// </summary>
    public static Dictionary<string, string> PodEnvironment(YamlMappingNode container, string podName, Func<string, string, string> secret)
    {
        var environment = Entries(container, "envFrom").Any() ? ConfigMapData() : new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var variable in Entries(container, "env"))
        {
            var name = Scalar(variable, "name")!;
            environment[name] = variable.Children.ContainsKey("value")
                ? System.Text.RegularExpressions.Regex.Replace(Scalar(variable, "value")!, @"\$\((\w+)\)", m => environment.GetValueOrDefault(m.Groups[1].Value, m.Value))
                : ((YamlMappingNode)variable["valueFrom"]).Children.ContainsKey("fieldRef") ? (Scalar(variable, "valueFrom", "fieldRef", "fieldPath") == "metadata.name" ? podName : throw new NotSupportedException(name))
                : secret(Scalar(variable, "valueFrom", "secretKeyRef", "name")!, Scalar(variable, "valueFrom", "secretKeyRef", "key")!);
        }

        return environment;
    }

    private static string? Name(YamlMappingNode node) => node.Children.TryGetValue(new YamlScalarNode("name"), out var name) ? name.ToString() : null;

    private static bool IsPatch(string file) =>
        ((YamlSequenceNode)LoadYaml($"{OverlayDirectory}/kustomization.yaml")["patches"]).Any(p => $"{OverlayDirectory}/{Scalar(p, "path")}" == file);

    // A strategic merge patch, as far as these manifests use it: maps merge, lists of named entries merge by name, other lists append.
    private static void Merge(YamlMappingNode target, YamlMappingNode patch)
    {
        foreach (var (key, value) in patch)
        {
            if (!target.Children.TryGetValue(key, out var existing))
            {
                target.Add(key, value);
            }
            else if (existing is YamlMappingNode map && value is YamlMappingNode patchMap)
            {
                Merge(map, patchMap);
            }
            else if (existing is YamlSequenceNode list && value is YamlSequenceNode patchList)
            {
                foreach (var item in patchList)
                {
                    var name = item is YamlMappingNode named ? Name(named) : null;
                    var match = name is null ? null : list.OfType<YamlMappingNode>().FirstOrDefault(e => Name(e) == name);
                    if (match is not null)
                    {
                        Merge(match, (YamlMappingNode)item);
                    }
                    else
                    {
                        list.Add(item);
                    }
                }
            }
            else
            {
                target.Children[key] = value;
            }
        }
    }
}
