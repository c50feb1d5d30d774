using System.Reflection;
using System.Text.RegularExpressions;
using Overlay.Host;
using Overlay.Host.Options;
using Overlay.Host.Telemetry;
using YamlDotNet.RepresentationModel;

namespace Overlay.Deploy.Tests;

/// <summary>
/// What can be checked of the container, compose and Kubernetes files without a container engine:
/// they parse, and every project, port, option name and health endpoint they name is one the code
/// really has.
/// </summary>
public sealed partial class DeployFilesTests
{
    private static readonly string Root = Repo.Root;
    private static readonly string Deploy = Path.Combine(Root, "deploy");

    public static TheoryData<string> YamlFiles() =>
    [
        .. new[] { "compose.yaml" }.Concat(KubernetesFiles()),
    ];

    /// <summary>The Kubernetes manifests, the open network's and the private overlay's (deploy/k8s-private).</summary>
    internal static IEnumerable<string> KubernetesFiles() =>
        new[] { "k8s", "k8s-private" }.SelectMany(directory => Directory.GetFiles(Path.Combine(Deploy, directory), "*.yaml")
            .Select(f => $"{directory}/{Path.GetFileName(f)}"));

    [Theory]
    [MemberData(nameof(YamlFiles))]
    public void Yaml_files_parse(string file)
    {
        var stream = new YamlStream();
        using var reader = new StringReader(File.ReadAllText(Path.Combine(Deploy, file)));
        stream.Load(reader);
        Assert.NotEmpty(stream.Documents);
    }

    [Fact]
    public void Every_option_the_files_set_exists_in_the_node()
    {
        var known = OptionPath.All().Select(p => p.EnvironmentName).ToHashSet(StringComparer.Ordinal);
        var files = new[] { "Dockerfile", "compose.yaml" }.Concat(KubernetesFiles());
        var used = 0;
        foreach (var file in files)
        {
            foreach (Match match in OptionName().Matches(File.ReadAllText(Path.Combine(Deploy, file))))
            {
                // Lists of values are named without their index, lists of sections with index 0 (as OptionPath lists them).
                var name = ArrayIndex().Replace(SectionIndex().Replace(match.Value, "__0__"), "");
                Assert.True(known.Contains(name), $"{file} sets {match.Value}, which is no option of the node");
                used++;
            }
        }

        Assert.True(used > 10, "the files were expected to configure the node through Overlay__ variables");
    }

    [Fact]
    public void Links_are_TLS_and_probes_use_the_health_only_port()
    {
        var linkPort = new Uri(new LinkEndpointOptions().Url).Port;
        Assert.Equal(7400, linkPort);
        const int HealthPort = 7402;
        var dockerfile = File.ReadAllText(Path.Combine(Deploy, "Dockerfile"));
        Assert.Contains($"EXPOSE {linkPort} {HealthPort}", dockerfile, StringComparison.Ordinal);
        Assert.Contains($"Overlay__Link__Url=https://0.0.0.0:{linkPort}", dockerfile, StringComparison.Ordinal);
        Assert.Contains($"Overlay__Link__HealthUrl=http://0.0.0.0:{HealthPort}", dockerfile, StringComparison.Ordinal);

        // No file names a cleartext link URL: every Url, AdvertisedUrl and seed is https.
        var linkUrls = 0;
        foreach (var file in new[] { "Dockerfile", "compose.yaml" }.Concat(KubernetesFiles()))
        {
            foreach (Match setting in LinkUrlSetting().Matches(File.ReadAllText(Path.Combine(Deploy, file))))
            {
                Assert.True(setting.Groups["url"].Value.StartsWith("https://", StringComparison.Ordinal), $"{file}: {setting.Value} is not TLS");
                linkUrls++;
            }
        }

        Assert.True(linkUrls >= 10, $"expected the files to set link URLs and seeds, found {linkUrls}");

        var configMap = (YamlMappingNode)At(LoadYaml("k8s/configmap.yaml"), "data");
        Assert.Equal($"http://0.0.0.0:{HealthPort}", Scalar(configMap, "Overlay__Link__HealthUrl"));
        var statefulSet = LoadYaml("k8s/statefulset.yaml");
        var container = (YamlMappingNode)((YamlSequenceNode)At(statefulSet, "spec", "template", "spec", "containers"))[0];
        Assert.Equal(linkPort.ToString(System.Globalization.CultureInfo.InvariantCulture), Scalar(container, "ports", 0, "containerPort"));
        foreach (var probe in new[] { "readinessProbe", "livenessProbe" })
        {
            // The kubelet's gRPC probe speaks plaintext only: the health-only port.
            Assert.Equal(HealthPort.ToString(System.Globalization.CultureInfo.InvariantCulture), Scalar(container, probe, "grpc", "port"));
        }

        var compose = LoadYaml("compose.yaml");
        var healthcheck = (YamlSequenceNode)At(compose, "x-node", "healthcheck", "test");
        Assert.Contains($"https://127.0.0.1:{linkPort}", healthcheck.Children.Select(c => c.ToString()));
        Assert.Contains("health", healthcheck.Children.Select(c => c.ToString()));
    }

    [Fact]
    public void The_image_builds_the_projects_that_exist()
    {
        var dockerfile = File.ReadAllText(Path.Combine(Deploy, "Dockerfile"));
        foreach (Match project in ProjectPath().Matches(dockerfile))
        {
            Assert.True(File.Exists(Path.Combine(Root, project.Value)), $"the Dockerfile publishes {project.Value}, which does not exist");
        }

        Assert.Contains("/app/node/Overlay.Host.dll", dockerfile, StringComparison.Ordinal);
        Assert.Contains("USER $APP_UID", dockerfile, StringComparison.Ordinal);
        Assert.Contains("VOLUME /data", dockerfile, StringComparison.Ordinal);
    }

    [Fact]
    public void The_kubernetes_pod_is_locked_down_and_can_read_its_token()
    {
        var spec = (YamlMappingNode)At(LoadYaml("k8s/statefulset.yaml"), "spec", "template", "spec");
        Assert.Equal("true", Scalar(spec, "securityContext", "runAsNonRoot"));
        Assert.NotNull(Scalar(spec, "securityContext", "fsGroup"));
        var container = (YamlMappingNode)((YamlSequenceNode)spec["containers"])[0];
        Assert.Equal("true", Scalar(container, "securityContext", "readOnlyRootFilesystem"));
        var volume = ((YamlSequenceNode)spec["volumes"]).Cast<YamlMappingNode>().Single(v => v.Children.ContainsKey("secret"));
        Assert.Equal("0440", Scalar(volume, "secret", "defaultMode"));

        // The drain bound must fit inside the pod's grace period.
        var grace = int.Parse(Scalar(spec, "terminationGracePeriodSeconds")!, System.Globalization.CultureInfo.InvariantCulture);
        var drain = TimeSpan.Parse(Scalar(LoadYaml("k8s/configmap.yaml"), "data", "Overlay__Tunnels__DrainTimeout")!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(drain < TimeSpan.FromSeconds(grace), $"drain {drain} does not fit in the {grace} s grace period");
    }

    [Fact]
    public void Operations_guide_documents_every_option()
    {
        var guide = File.ReadAllText(Path.Combine(Root, "docs", "operations.md"));
        foreach (var option in OptionPath.All())
        {
            Assert.True(guide.Contains(option.EnvironmentName, StringComparison.Ordinal), $"docs/operations.md does not mention {option.EnvironmentName}");
        }
    }

    [Fact]
    public void Grace_periods_outlast_the_node_shutdown_timeout()
    {
        // A supervisor that kills the node before its own shutdown timeout can cut the drain or the key save short.
        var compose = LoadYaml("compose.yaml");
        var composeGrace = ComposeDuration(Scalar(compose, "x-node", "stop_grace_period")!);
        var composeEnvironments = new[] { At(compose, "x-env") }
            .Concat(((YamlMappingNode)compose["services"]).Children.Values.Cast<YamlMappingNode>()
                .Where(service => service.Children.ContainsKey("environment")).Select(service => service["environment"]));
        var composeShutdown = OverlayNode.ShutdownTimeout(ConfiguredDrain(composeEnvironments.Select(e => Setting((YamlMappingNode)e, DrainTimeoutVariable))));
        Assert.True(composeGrace > composeShutdown, $"compose's stop_grace_period {composeGrace} does not outlast the node's shutdown timeout {composeShutdown}");

        var spec = (YamlMappingNode)At(LoadYaml("k8s/statefulset.yaml"), "spec", "template", "spec");
        var podGrace = TimeSpan.FromSeconds(int.Parse(Scalar(spec, "terminationGracePeriodSeconds")!, System.Globalization.CultureInfo.InvariantCulture));
        var containerEnvironment = ((YamlSequenceNode)spec["containers"]).Cast<YamlMappingNode>()
            .Where(c => c.Children.ContainsKey("env")).SelectMany(c => (YamlSequenceNode)c["env"]).Cast<YamlMappingNode>()
            .Where(e => Scalar(e, "name") == DrainTimeoutVariable && e.Children.ContainsKey("value")).Select(e => Scalar(e, "value"));
        var configMap = Setting((YamlMappingNode)At(LoadYaml("k8s/configmap.yaml"), "data"), DrainTimeoutVariable);
        var podShutdown = OverlayNode.ShutdownTimeout(ConfiguredDrain(containerEnvironment.Append(configMap)));
        Assert.True(podGrace > podShutdown, $"terminationGracePeriodSeconds {podGrace} does not outlast the node's shutdown timeout {podShutdown}");
    }

    private const string DrainTimeoutVariable = "Overlay__Tunnels__DrainTimeout";

    // The longest drain any of the places sets, or the node's default.
    private static TimeSpan ConfiguredDrain(IEnumerable<string?> values)
    {
        var set = values.OfType<string>().Select(v => TimeSpan.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        return set.Count == 0 ? new TunnelOptions().DrainTimeout : set.Max();
    }

    private static string? Setting(YamlMappingNode environment, string name) =>
        environment.Children.TryGetValue(new YamlScalarNode(name), out var value) ? (value as YamlScalarNode)?.Value : null;

    // Compose durations: "40s", "1m30s", "1h".
    private static TimeSpan ComposeDuration(string text)
    {
        var matches = ComposeDurationPart().Matches(text);
        Assert.True(matches.Sum(m => m.Length) == text.Length && matches.Count > 0, $"'{text}' is not a compose duration");
        return matches.Aggregate(TimeSpan.Zero, (total, m) =>
        {
            var value = double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            return total + m.Groups[2].Value switch
            {
                "h" => TimeSpan.FromHours(value),
                "m" => TimeSpan.FromMinutes(value),
                "s" => TimeSpan.FromSeconds(value),
                "ms" => TimeSpan.FromMilliseconds(value),
                _ => TimeSpan.FromMicroseconds(value),
            };
        });
    }

    internal static YamlMappingNode LoadYaml(string file)
    {
        var stream = new YamlStream();
        using var reader = new StringReader(File.ReadAllText(Path.Combine(Deploy, file)));
        stream.Load(reader);
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    internal static YamlNode At(YamlNode node, params object[] keys)
    {
        foreach (var key in keys)
        {
            node = key is int index ? ((YamlSequenceNode)node)[index] : ((YamlMappingNode)node)[(string)key];
        }

        return node;
    }

    internal static string? Scalar(YamlNode node, params object[] keys) => (At(node, keys) as YamlScalarNode)?.Value;

    [GeneratedRegex(@"\bOverlay__[A-Za-z0-9_]+")]
    private static partial Regex OptionName();

    [GeneratedRegex(@"(\d+(?:\.\d+)?)(h|ms|m|s|us)")]
    private static partial Regex ComposeDurationPart();

    [GeneratedRegex(@"__\d+$")]
    private static partial Regex ArrayIndex();

    [GeneratedRegex(@"__\d+__")]
    private static partial Regex SectionIndex();

    // Overlay__Link__Url, __AdvertisedUrl, __Directory__Seeds__N and __Membership__JoinUrl, as KEY=value, KEY: value or a "name: KEY" / "value:" pair.
    [GeneratedRegex(@"Overlay__(?:Link__Url|Link__AdvertisedUrl|Directory__Seeds__\d+|Membership__JoinUrl)(?:=|:\s*|\s*\n\s*value:\s*)(?<url>\S+)")]
    private static partial Regex LinkUrlSetting();

    [GeneratedRegex(@"src/[A-Za-z.]+/[A-Za-z.]+\.csproj")]
    private static partial Regex ProjectPath();
}

/// <summary>Every configurable option of the node, found by reflection over the options classes.</summary>
internal sealed record OptionPath(string ConfigurationKey)
{
    public string EnvironmentName => ConfigurationKey.Replace(":", "__", StringComparison.Ordinal);

    public static IEnumerable<OptionPath> All()
    {
        var sections = new (string Prefix, Type Type)[]
        {
            ("Overlay", typeof(OverlayOptions)),
            ("Overlay:Telemetry", typeof(TelemetryOptions)),
        };
        return sections.SelectMany(s => Walk(s.Prefix, s.Type)).Distinct();
    }

    private static bool IsSection(Type type) =>
        type.IsClass && type != typeof(string) && type.Namespace?.StartsWith("Overlay", StringComparison.Ordinal) == true;

    private static IEnumerable<OptionPath> Walk(string prefix, Type type)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
        {
            var key = $"{prefix}:{property.Name}";
            var propertyType = property.PropertyType;
            if (!propertyType.IsGenericType && IsSection(propertyType))
            {
                foreach (var nested in Walk(key, propertyType))
                {
                    yield return nested;
                }
            }
            else if (propertyType.IsGenericType && propertyType.GetGenericTypeDefinition() == typeof(List<>) && IsSection(propertyType.GetGenericArguments()[0]))
            {
                // A list of sections (Overlay:Membership:Tokens): the list, and the keys of its first entry.
                yield return new OptionPath(key);
                foreach (var nested in Walk(key + ":0", propertyType.GetGenericArguments()[0]))
                {
                    yield return nested;
                }
            }
            else
            {
                yield return new OptionPath(key);
            }
        }
    }
}
