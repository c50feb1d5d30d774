using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;
using Overlay.Host.Membership;
using Overlay.Identity;

namespace Overlay.Host.Link.Tls;

/// <summary>
/// The TLS link connections other nodes opened to this one, by the node id each proved, so that a
/// revoked node's connections can be closed at once (its calls end; it must dial again and is then
/// refused). Bounded by the link listener's connection limit.
/// </summary>
internal sealed class IncomingLinks
{
    private readonly ConcurrentDictionary<NodeId, ConcurrentDictionary<string, ConnectionContext>> _byNode = new();

    public IncomingLinks(MembershipBook memberships) => memberships.Revoked += Abort;

    /// <summary>Records <paramref name="connection"/> as node <paramref name="id"/>'s until it closes.</summary>
    public void Track(NodeId id, ConnectionContext connection)
    {
        var connections = _byNode.GetOrAdd(id, _ => new ConcurrentDictionary<string, ConnectionContext>(StringComparer.Ordinal));
        connections[connection.ConnectionId] = connection;
        connection.ConnectionClosed.Register(() =>
        {
            connections.TryRemove(connection.ConnectionId, out _);
            if (connections.IsEmpty)
            {
                ((ICollection<KeyValuePair<NodeId, ConcurrentDictionary<string, ConnectionContext>>>)_byNode).Remove(new(id, connections));
            }
        });
    }

    /// <summary>How many connections node <paramref name="id"/> has open to this one.</summary>
    public int Count(NodeId id) => _byNode.TryGetValue(id, out var connections) ? connections.Count : 0;

    /// <summary>Aborts every connection node <paramref name="id"/> opened to this one.</summary>
    public void Abort(NodeId id)
    {
        if (_byNode.TryGetValue(id, out var connections))
        {
            foreach (var connection in connections.Values)
            {
                connection.Abort(new ConnectionAbortedException("the node's membership was revoked"));
            }
        }
    }
}
