using Grpc.Core;

namespace Overlay.Cli;

/// <summary>What the CLI's exit code means; scripts may rely on these.</summary>
public static class ExitCodes
{
    /// <summary>Success.</summary>
    public const int Ok = 0;

    /// <summary>Something else failed (see the message).</summary>
    public const int Failed = 1;

    /// <summary>Bad command line or a request the node called invalid.</summary>
    public const int Usage = 2;

    /// <summary>No token, a wrong token, or not allowed.</summary>
    public const int Auth = 3;

    /// <summary>An unknown node, peer or tunnel.</summary>
    public const int NotFound = 4;

    /// <summary>The node could not be reached, or the overlay could not carry the tunnel (every ping failed).</summary>
    public const int Unavailable = 5;

    /// <summary>A deadline passed.</summary>
    public const int Timeout = 6;

    /// <summary>A limit was reached (too many tunnels, a too slow consumer, an oversized message).</summary>
    public const int Limit = 7;

    /// <summary>Interrupted (Ctrl+C) or closed by CloseTunnel.</summary>
    public const int Cancelled = 130;

    /// <summary>The exit code for a failed call.</summary>
    public static int For(StatusCode code) => code switch
    {
        StatusCode.InvalidArgument or StatusCode.FailedPrecondition or StatusCode.Unimplemented => Usage,
        StatusCode.Unauthenticated or StatusCode.PermissionDenied => Auth,
        StatusCode.NotFound => NotFound,
        StatusCode.Unavailable => Unavailable,
        StatusCode.DeadlineExceeded => Timeout,
        StatusCode.ResourceExhausted => Limit,
        StatusCode.Cancelled => Cancelled,
        _ => Failed,
    };
}
