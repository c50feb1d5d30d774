using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Overlay.Control.Tests.Applications;

/// <summary>
/// A minimal ASP.NET Core app on real Kestrel (loopback, port 0): the program behind `overlay expose`.
/// <c>/big</c> is <see cref="Big"/>; <c>/connection</c> names the TCP connection it came on;
/// <c>/gate</c> answers once <see cref="Gate"/> requests wait at once; <c>/cut</c> sends part of
/// <see cref="Big"/> and then aborts the connection, as a service that goes away mid-response.
/// </summary>
internal sealed class TestWebApp : IAsyncDisposable
{
    public const int CutAfterBytes = 1024 * 1024;

    private readonly WebApplication _app;
    private readonly TaskCompletionSource _gateOpen = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _waitingAtGate;

    private TestWebApp(WebApplication app) => _app = app;

    /// <summary>10 MiB of seeded random bytes.</summary>
    public static byte[] Big { get; } = MakeBig();

    public int Gate { get; init; } = 50;

    public IPEndPoint Endpoint { get; private set; } = null!;

    public static async Task<TestWebApp> StartAsync(int gate)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var web = new TestWebApp(app) { Gate = gate };
        app.MapGet("/big", async context =>
        {
            context.Response.ContentLength = Big.Length;
            await context.Response.Body.WriteAsync(Big, context.RequestAborted);
        });
        app.MapGet("/connection", (HttpContext context) => context.Connection.Id);
        app.MapGet("/gate", async (HttpContext context) =>
        {
            if (Interlocked.Increment(ref web._waitingAtGate) == web.Gate)
            {
                web._gateOpen.TrySetResult();
            }

            await web._gateOpen.Task.WaitAsync(context.RequestAborted);
            return context.Connection.Id;
        });
        app.MapGet("/cut", async context =>
        {
            context.Response.ContentLength = Big.Length;
            await context.Response.Body.WriteAsync(Big.AsMemory(0, CutAfterBytes), context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
            context.Abort();
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        web.Endpoint = new IPEndPoint(IPAddress.Loopback, new Uri(address).Port);
        return web;
    }

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource();
        await stop.CancelAsync(); // stop at once: nothing here is worth a graceful drain
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
    }

    private static byte[] MakeBig()
    {
        var bytes = new byte[10 * 1024 * 1024];
        new Random(22).NextBytes(bytes);
        return bytes;
    }
}
