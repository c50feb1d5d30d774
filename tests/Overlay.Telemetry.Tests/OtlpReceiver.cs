using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Overlay.Telemetry.Tests.Otlp;

namespace Overlay.Telemetry.Tests;

/// <summary>One exported span with the resource it came with.</summary>
internal sealed record ReceivedSpan(string InstanceId, Span Span)
{
    public string Name => Span.Name;

    public string TraceId => Convert.ToHexStringLower(Span.TraceId.Span);

    public string SpanId => Convert.ToHexStringLower(Span.SpanId.Span);

    public string ParentSpanId => Convert.ToHexStringLower(Span.ParentSpanId.Span);

    public string? Attribute(string key) => Span.Attributes.FirstOrDefault(a => a.Key == key)?.Value is { } value
        ? value.ValueCase switch
        {
            AnyValue.ValueOneofCase.StringValue => value.StringValue,
            AnyValue.ValueOneofCase.IntValue => value.IntValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
            AnyValue.ValueOneofCase.BoolValue => value.BoolValue ? "true" : "false",
            _ => value.ToString(),
        }
        : null;

    public bool IsError => Span.Status?.Code == Otlp.Status.Types.StatusCode.Error;
}

/// <summary>An OTLP/gRPC trace receiver on loopback, enough for exporters to talk to.</summary>
internal sealed class OtlpReceiver : TraceService.TraceServiceBase, IAsyncDisposable
{
    private readonly List<ReceivedSpan> _spans = [];
    private readonly Lock _lock = new();
    private WebApplication? _app;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Uri Endpoint { get; private set; } = null!;

    public IReadOnlyList<ReceivedSpan> Spans
    {
        get
        {
            lock (_lock)
            {
                return [.. _spans];
            }
        }
    }

    public static async Task<OtlpReceiver> StartAsync()
    {
        var receiver = new OtlpReceiver();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(receiver);
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        var app = builder.Build();
        app.MapGrpcService<OtlpReceiver>();
        await app.StartAsync();
        receiver._app = app;
        receiver.Endpoint = new Uri(app.Urls.First());
        return receiver;
    }

    public override Task<ExportTraceServiceResponse> Export(ExportTraceServiceRequest request, ServerCallContext context)
    {
        TaskCompletionSource changed;
        lock (_lock)
        {
            foreach (var resource in request.ResourceSpans)
            {
                var instance = resource.Resource.Attributes.FirstOrDefault(a => a.Key == "service.instance.id")?.Value.StringValue ?? "";
                foreach (var scope in resource.ScopeSpans)
                {
                    _spans.AddRange(scope.Spans.Select(span => new ReceivedSpan(instance, span)));
                }
            }

            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
        return Task.FromResult(new ExportTraceServiceResponse());
    }

    /// <summary>Waits until <paramref name="condition"/> holds over the spans received so far.</summary>
    public async Task<IReadOnlyList<ReceivedSpan>> WaitForAsync(Func<IReadOnlyList<ReceivedSpan>, bool> condition, TimeSpan timeout, Action flush)
    {
        using var deadline = new CancellationTokenSource(timeout);
        while (true)
        {
            Task changed;
            lock (_lock)
            {
                changed = _changed.Task;
            }

            flush();
            var spans = Spans;
            if (condition(spans))
            {
                return spans;
            }

            try
            {
                await changed.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"the spans expected did not arrive within {timeout}; received: {string.Join(", ", Spans.Select(s => $"{s.Name}@{s.InstanceId[..8]}"))}");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
    }
}
