using System.Globalization;
using System.Net;

namespace Overlay.Cli.Forwarding;

/// <summary>The addresses the forwarding commands take on the command line.</summary>
internal static class Endpoints
{
    /// <summary>A local address to listen on: an IP literal and a port (<c>127.0.0.1:9000</c>, <c>[::1]:9000</c>).</summary>
    public static IPEndPoint Listen(string option, string? value) =>
        value is not null && IPEndPoint.TryParse(value, out var endpoint) && value.Contains(':', StringComparison.Ordinal) && endpoint.Port is > 0 and <= 65535
            ? endpoint
            : throw new CliException(ExitCodes.Usage, $"{option} '{value}' is not an IP address and port, e.g. 127.0.0.1:9000");

    /// <summary>The address the expose process dials: an IP literal or host name, and a port.</summary>
    public static EndPoint Target(string option, string? value)
    {
        if (value is not null && IPEndPoint.TryParse(value, out var ip) && value.Contains(':', StringComparison.Ordinal) && ip.Port is > 0 and <= 65535)
        {
            return ip;
        }

        var colon = value?.LastIndexOf(':') ?? -1;
        if (colon > 0 && Uri.CheckHostName(value![..colon]) == UriHostNameType.Dns
            && int.TryParse(value[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and <= 65535)
        {
            return new DnsEndPoint(value[..colon], port);
        }

        throw new CliException(ExitCodes.Usage, $"{option} '{value}' is not a host and port, e.g. 127.0.0.1:8080");
    }
}
