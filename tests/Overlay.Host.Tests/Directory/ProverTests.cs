using System.Globalization;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Overlay.Host.Options;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Identity;
using Overlay.Protocol;
using Overlay.Protocol.V1;

namespace Overlay.Host.Tests.Directory;

/// <summary>A prover that meets an unexpected error logs it and goes on: the proof queue is never left without readers.</summary>
public sealed class ProverTests
{
    private const int ProofFailedEvent = 302;
    private const int ProverFailedEvent = 323;

    [Fact]
    public async Task An_unexpected_error_in_a_proof_does_not_end_the_prover()
    {
        await using var recorder = new ConnectionRecorder();
        var root = System.IO.Directory.CreateTempSubdirectory("overlay-prover-");
        var logs = new TestLogSink();
        // The one prover's first failed-proof log line throws, as a bug in a proof would.
        var fault = new FaultOnce(ProofFailedEvent);
        await using var node = OverlayNode.Create(new OverlayNodeSettings
        {
            Configuration = SingleHostNetwork.With(new Dictionary<string, string?>
            {
                ["Overlay:DataDirectory"] = root.FullName,
                ["Overlay:Link:Url"] = "http://127.0.0.1:0",
                ["Overlay:Directory:ConcurrentProofs"] = "1",
                // Proof failures are Debug events; appsettings.json stops at Information.
                ["Logging:LogLevel:Overlay"] = "Debug",
            }),
            ConfigureLogging = logging =>
            {
                logging.ClearProviders();
                logging.SetMinimumLevel(LogLevel.Debug);
                logging.AddFilter("Microsoft", LogLevel.Warning);
                logging.AddProvider(logs.CreateProvider("node"));
                logging.AddProvider(fault);
            },
        });
        using var deadline = TestTimeouts.After(30);
        try
        {
            await node.StartAsync(deadline.Token);
            using var first = NodeIdentity.Create();
            using var second = NodeIdentity.Create();

            await GossipAsync(node, Descriptor(first, "127.0.0.1", recorder.Port), deadline.Token);
            await logs.WaitForAsync(e => e.EventId.Id == ProverFailedEvent, "the prover logged the unexpected error", deadline.Token);

            // Before, the prover's task ended with the exception and this proof never ran.
            // Another endpoint (the first one is cooling down): nothing listens there, so its proof fails too.
            await GossipAsync(node, Descriptor(second, "127.0.0.2", recorder.Port), deadline.Token);
            await logs.WaitForAsync(e => e.EventId.Id == ProofFailedEvent && e.Message.Contains(second.Id.ToShortString(), StringComparison.Ordinal),
                "the next proof ran", deadline.Token);
        }
        finally
        {
            await node.KillAsync();
            root.Delete(recursive: true);
        }
    }

    private static NodeDescriptor Descriptor(NodeIdentity owner, string host, int port)
    {
        var now = DateTimeOffset.UtcNow;
        using var onionKey = OnionKey.Create(1, now.AddMinutes(-1), now.AddHours(1));
        return NodeDescriptor.Create(owner, onionKey, new Uri(string.Create(CultureInfo.InvariantCulture, $"http://{host}:{port}")), NetworkParameters.Default, now);
    }

    private static async Task GossipAsync(OverlayNode node, NodeDescriptor descriptor, CancellationToken cancellationToken)
    {
        using var channel = TestLinkTls.Channel(node.LinkEndpoint);
        await new Protocol.V1.Link.LinkClient(channel).ExchangeAsync(new DescriptorExchange { Known = { ByteString.CopyFrom(descriptor.Encoded.Span) } },
            cancellationToken: cancellationToken);
    }

    /// <summary>A logging provider that throws the first time an event is logged.</summary>
    private sealed class FaultOnce(int eventId) : ILoggerProvider, ILogger
    {
        private int _thrown;

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId id, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (id.Id == eventId && Interlocked.Exchange(ref _thrown, 1) == 0)
            {
                throw new InvalidOperationException("a fault injected into the first failed proof");
            }
        }

        public void Dispose()
        {
            // Nothing held.
        }
    }
}
