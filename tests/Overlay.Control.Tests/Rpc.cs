using Grpc.Core;

namespace Overlay.Control.Tests;

/// <summary>Helpers over RpcException.</summary>
internal static class Rpc
{
    public static string? Reason(this RpcException exception) => exception.Trailers.GetValue("overlay-reason");

    public static async Task<RpcException> ThrowsAsync(StatusCode code, Func<Task> call)
    {
        var exception = await Assert.ThrowsAsync<RpcException>(call);
        Assert.True(exception.StatusCode == code, $"expected {code}, got {exception.StatusCode}: {exception.Status.Detail}");
        return exception;
    }
}
