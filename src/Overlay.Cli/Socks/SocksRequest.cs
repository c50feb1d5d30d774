namespace Overlay.Cli.Socks;

/// <summary>A SOCKS5 CONNECT to a host name (IP literals are refused before one is made).</summary>
internal sealed record SocksRequest(string Host, int Port);
