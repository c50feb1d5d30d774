using System.Buffers.Binary;
using System.Text;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;

namespace Overlay.Tests.Identity;

public sealed class NodeDescriptorTests : IDisposable
{
    private static readonly DateTimeOffset T0 = RawDescriptor.T0;
    private static readonly TimeSpan Skew = TimeSpan.FromMinutes(5);
    private static readonly Uri Endpoint = new("https://node.example:5001/");

    // Offsets of the one-version encoding, from the documented layout.
    private const int VersionCountOffset = 93;
    private const int EndpointLengthOffset = 94 + 1 + 14;

    private readonly NodeIdentity _identity = NodeIdentity.Create();
    private readonly OnionKey _onionKey = OnionKey.Create(7, T0.AddHours(-1), T0.AddDays(1));

    public void Dispose()
    {
        _onionKey.Dispose();
        _identity.Dispose();
    }

    [Fact]
    public void Create_parse_and_validate_round_trip()
    {
        var created = NodeDescriptor.Create(_identity, _onionKey, Endpoint, NetworkParameters.Default, T0, DescriptorFeatures.SealedTraceContext);

        Assert.Equal(DescriptorError.None, NodeDescriptor.TryParse(created.Encoded.Span, out var parsed));
        Assert.NotNull(parsed);
        foreach (var d in new[] { created, parsed })
        {
            Assert.Equal(_identity.Id, d.Id);
            Assert.Equal(_onionKey.PublicKey.ToArray(), d.OnionKey.ToArray());
            Assert.Equal(7u, d.OnionEpoch);
            Assert.Equal(T0.AddHours(-1), d.OnionValidFrom);
            Assert.Equal(T0.AddDays(1), d.OnionExpiresAt);
            Assert.Equal(T0, d.PublishedAt);
            Assert.Equal([NodeDescriptor.ProtocolVersion], d.ProtocolVersions.ToArray());
            Assert.Equal(DescriptorFeatures.SealedTraceContext, d.Features);
            Assert.Equal(NetworkParameters.Default, d.Network);
            Assert.Equal(Endpoint, d.Endpoint);
            Assert.Equal(DescriptorError.None, d.Validate(NetworkParameters.Default, T0, Skew));
        }

        Assert.Equal(created.Encoded.ToArray(), parsed.Encoded.ToArray());

        var hop = parsed.ToRouteHop();
        Assert.Equal(_identity.Id, hop.Id);
        Assert.Equal(7u, hop.Epoch);
        Assert.Equal(_onionKey.PublicKey.ToArray(), hop.OnionPublicKey.ToArray());
    }

    [Fact]
    public void Encoding_is_exactly_the_documented_layout()
    {
        var network = new NetworkParameters { MaxRelays = 126, CellSize = 8192, Construction = CellConstruction.MacArray };
        var created = NodeDescriptor.Create(_identity, _onionKey, Endpoint, network, T0, DescriptorFeatures.SealedTraceContext);
        var raw = new RawDescriptor(_identity, _onionKey)
        {
            Features = 1,
            MaxRelays = 126,
            CellSize = 8192,
            Construction = 2,
        };

        // Ed25519 is deterministic, so an independent writer of the layout yields the same bytes.
        var expected = raw.Encode();
        Assert.Equal(expected, created.Encoded.ToArray());
        Assert.Equal(94 + 1 + 16 + Endpoint.AbsoluteUri.Length + 64, expected.Length);
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32BigEndian(expected.AsSpan(65)));
        Assert.Equal(T0.ToUnixTimeSeconds(), BinaryPrimitives.ReadInt64BigEndian(expected.AsSpan(85)));
    }

    [Fact]
    public void Parse_copies_the_input()
    {
        var encoded = NodeDescriptor.Create(_identity, _onionKey, Endpoint, NetworkParameters.Default, T0).Encoded.ToArray();
        Assert.Equal(DescriptorError.None, NodeDescriptor.TryParse(encoded, out var parsed));
        var key = parsed!.OnionKey.ToArray();

        Array.Clear(encoded);

        Assert.Equal(key, parsed.OnionKey.ToArray());
        Assert.Equal(DescriptorError.None, NodeDescriptor.TryParse(parsed.Encoded.Span, out _));
    }

    [Theory]
    [InlineData(0x01)]
    [InlineData(0x80)]
    [InlineData(0xFF)]
    public void Flipping_any_byte_is_rejected(byte mask)
    {
        var encoded = NodeDescriptor.Create(_identity, _onionKey, Endpoint, NetworkParameters.Default, T0).Encoded.ToArray();

        for (var i = 0; i < encoded.Length; i++)
        {
            var copy = (byte[])encoded.Clone();
            copy[i] ^= mask;

            var error = NodeDescriptor.TryParse(copy, out var descriptor);

            var expected = i switch
            {
                0 => DescriptorError.UnsupportedFormat,
                VersionCountOffset or EndpointLengthOffset or EndpointLengthOffset + 1 => DescriptorError.Malformed,
                _ => DescriptorError.BadSignature, // every other byte is signed, or is the signature
            };
            Assert.True(expected == error, $"byte {i} ^ 0x{mask:x2}: {error}, expected {expected}");
            Assert.Null(descriptor);
        }
    }

    [Fact]
    public void Every_truncation_is_malformed()
    {
        var encoded = NodeDescriptor.Create(_identity, _onionKey, Endpoint, NetworkParameters.Default, T0).Encoded.ToArray();

        for (var length = 0; length < encoded.Length; length++)
        {
            Assert.Equal(DescriptorError.Malformed, NodeDescriptor.TryParse(encoded.AsSpan(0, length), out var descriptor));
            Assert.Null(descriptor);
        }

        Assert.Equal(DescriptorError.Malformed, NodeDescriptor.TryParse([.. encoded, 0], out _));
    }

    [Theory]
    [InlineData(NodeDescriptor.MaxSize + 1)]
    [InlineData(100_000)]
    public void Too_large_is_refused_before_parsing(int size)
    {
        var encoded = NodeDescriptor.Create(_identity, _onionKey, Endpoint, NetworkParameters.Default, T0).Encoded.ToArray();
        var large = new byte[size];
        encoded.CopyTo(large, 0);

        Assert.Equal(DescriptorError.TooLarge, NodeDescriptor.TryParse(large, out var descriptor));
        Assert.Null(descriptor);
    }

    [Fact]
    public void A_maximal_descriptor_fits_the_size_cap()
    {
        var raw = new RawDescriptor(_identity, _onionKey)
        {
            Versions = [1, 2, 3, 4, 5, 6, 7, 8],
            Endpoint = Encoding.UTF8.GetBytes("https://" + new string('a', 63) + "." + new string('b', 63) + "." + new string('c', 63) + "." + new string('d', 54) + "/"),
        };
        Assert.Equal(NodeDescriptor.MaxEndpointLength, raw.Endpoint.Length);

        var encoded = raw.Encode();

        Assert.True(encoded.Length <= NodeDescriptor.MaxSize);
        Assert.Equal(DescriptorError.None, NodeDescriptor.TryParse(encoded, out var descriptor));
        Assert.Equal(8, descriptor!.ProtocolVersions.Length);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    [InlineData(255)]
    public void Other_format_versions_are_unsupported_even_when_signed(byte version)
    {
        var raw = new RawDescriptor(_identity, _onionKey) { FormatVersion = version };

        Assert.Equal(DescriptorError.UnsupportedFormat, NodeDescriptor.TryParse(raw.Encode(), out var descriptor));
        Assert.Null(descriptor);
    }

    [Fact]
    public void A_signed_onion_key_with_the_top_bit_set_is_non_canonical()
    {
        var raw = new RawDescriptor(_identity, _onionKey);
        raw.OnionKey[31] |= 0x80;

        Assert.Equal(DescriptorError.NonCanonicalOnionKey, NodeDescriptor.TryParse(raw.Encode(), out var descriptor));
        Assert.Null(descriptor);

        raw.OnionKey[31] &= 0x7F;
        Assert.Equal(DescriptorError.None, NodeDescriptor.TryParse(raw.Encode(), out _));
    }

    [Theory]
    [InlineData("ftp://node.example/")]
    [InlineData("file:///etc/passwd")]
    [InlineData("/relative/path")]
    [InlineData("relative")]
    [InlineData("node.example:5001")]
    [InlineData("https://user:secret@node.example/")]
    [InlineData("https://user@node.example/")]
    [InlineData(" https://node.example/")]
    [InlineData("https://node.example/\n")]
    [InlineData("https://node .example/")]
    [InlineData("http://")]
    [InlineData("")]
    public void A_signed_invalid_endpoint_is_refused(string endpoint)
    {
        var raw = new RawDescriptor(_identity, _onionKey) { Endpoint = Encoding.UTF8.GetBytes(endpoint) };

        Assert.Equal(DescriptorError.InvalidEndpoint, NodeDescriptor.TryParse(raw.Encode(), out var descriptor));
        Assert.Null(descriptor);
    }

    [Fact]
    public void A_signed_endpoint_longer_than_255_bytes_or_not_utf8_is_refused()
    {
        var raw = new RawDescriptor(_identity, _onionKey) { Endpoint = Encoding.UTF8.GetBytes("https://node.example/" + new string('a', 235)) };
        Assert.Equal(256, raw.Endpoint.Length);
        Assert.Equal(DescriptorError.InvalidEndpoint, NodeDescriptor.TryParse(raw.Encode(), out _));

        raw.Endpoint = [.. "https://node.example/"u8, 0xC3, 0x28];
        Assert.Equal(DescriptorError.InvalidEndpoint, NodeDescriptor.TryParse(raw.Encode(), out _));

        raw.Endpoint = Encoding.UTF8.GetBytes("https://node.example/" + new string('a', 234));
        Assert.Equal(DescriptorError.None, NodeDescriptor.TryParse(raw.Encode(), out var descriptor));
        Assert.Equal(255, Encoding.UTF8.GetByteCount(descriptor!.Endpoint.AbsoluteUri));
    }

    [Theory]
    [InlineData("ftp://node.example/")]
    [InlineData("https://user:secret@node.example/")]
    [InlineData("file:///srv/node")]
    public void Create_refuses_an_invalid_endpoint(string endpoint)
    {
        Assert.Throws<ArgumentException>(() => NodeDescriptor.Create(_identity, _onionKey, new Uri(endpoint), NetworkParameters.Default, T0));
    }

    [Fact]
    public void Create_refuses_a_relative_or_too_long_endpoint_bad_network_and_unknown_features()
    {
        Assert.Throws<ArgumentException>(() => NodeDescriptor.Create(_identity, _onionKey, new Uri("/relay", UriKind.Relative), NetworkParameters.Default, T0));
        Assert.Throws<ArgumentException>(() => NodeDescriptor.Create(_identity, _onionKey, new Uri("https://node.example/" + new string('a', 235)), NetworkParameters.Default, T0));
        Assert.Throws<ArgumentException>(() => NodeDescriptor.Create(_identity, _onionKey, Endpoint, new NetworkParameters { CellSize = 100 }, T0));
        Assert.Throws<ArgumentException>(() => NodeDescriptor.Create(_identity, _onionKey, Endpoint, NetworkParameters.Default, T0, (DescriptorFeatures)2));
    }

    [Fact]
    public void Expired_beyond_the_clock_skew()
    {
        var descriptor = NodeDescriptor.Create(_identity, _onionKey, Endpoint, NetworkParameters.Default, T0);
        var expires = _onionKey.ExpiresAt;

        Assert.Equal(DescriptorError.None, descriptor.Validate(NetworkParameters.Default, expires, Skew));
        Assert.Equal(DescriptorError.None, descriptor.Validate(NetworkParameters.Default, expires + Skew, Skew));
        Assert.Equal(DescriptorError.Expired, descriptor.Validate(NetworkParameters.Default, expires + Skew + TimeSpan.FromSeconds(1), Skew));
        Assert.Equal(DescriptorError.Expired, descriptor.Validate(NetworkParameters.Default, expires + TimeSpan.FromSeconds(1), TimeSpan.Zero));
    }

    [Fact]
    public void Not_yet_valid_beyond_the_clock_skew()
    {
        var descriptor = NodeDescriptor.Create(_identity, _onionKey, Endpoint, NetworkParameters.Default, T0);
        var validFrom = _onionKey.ValidFrom;

        Assert.Equal(DescriptorError.None, descriptor.Validate(NetworkParameters.Default, T0 - Skew, Skew));
        Assert.Equal(DescriptorError.NotYetValid, descriptor.Validate(NetworkParameters.Default, T0 - Skew - TimeSpan.FromSeconds(1), Skew));
        Assert.Equal(DescriptorError.NotYetValid, descriptor.Validate(NetworkParameters.Default, validFrom - Skew - TimeSpan.FromSeconds(1), Skew));
    }

    [Fact]
    public void Published_in_the_future_is_not_yet_valid()
    {
        var descriptor = NodeDescriptor.Create(_identity, _onionKey, Endpoint, NetworkParameters.Default, T0.AddMinutes(10));

        Assert.Equal(DescriptorError.NotYetValid, descriptor.Validate(NetworkParameters.Default, T0, Skew));
        Assert.Equal(DescriptorError.None, descriptor.Validate(NetworkParameters.Default, T0.AddMinutes(5), Skew));
    }

    public static TheoryData<NetworkParameters> OtherNetworks() => new()
    {
        new NetworkParameters { MaxRelays = 31 },
        new NetworkParameters { CellSize = 8192 },
        new NetworkParameters { Construction = CellConstruction.MacArray },
        new NetworkParameters { MaxDeadlineClass = DeadlineClass.Hour1 },
        new NetworkParameters { IdleTimeout = TimeSpan.FromMinutes(5) },
    };

    [Fact]
    public void The_deadline_cap_and_the_idle_timeout_travel_in_the_descriptor()
    {
        var network = new NetworkParameters { MaxDeadlineClass = DeadlineClass.Minutes15, IdleTimeout = TimeSpan.FromSeconds(45) };
        var descriptor = NodeDescriptor.Create(_identity, _onionKey, Endpoint, network, T0);

        Assert.Equal(DescriptorError.None, NodeDescriptor.TryParse(descriptor.Encoded.Span, out var parsed));
        Assert.Equal(network, parsed!.Network);
        Assert.Equal(DescriptorError.None, parsed.Validate(network, T0, Skew));
    }

    [Theory]
    [InlineData(8, 120)]
    [InlineData(7, 0)]
    [InlineData(7, 3601)]
    public void An_undefined_deadline_cap_or_idle_timeout_is_a_network_mismatch(byte maxDeadlineClass, ushort idleSeconds)
    {
        var raw = new RawDescriptor(_identity, _onionKey) { MaxDeadlineClass = maxDeadlineClass, IdleTimeoutSeconds = idleSeconds };

        Assert.Equal(DescriptorError.None, NodeDescriptor.TryParse(raw.Encode(), out var descriptor));
        Assert.Equal(DescriptorError.NetworkMismatch, descriptor!.Validate(NetworkParameters.Default, T0, Skew));
    }

    [Theory]
    [MemberData(nameof(OtherNetworks))]
    public void Each_network_parameter_must_match(NetworkParameters expected)
    {
        var descriptor = NodeDescriptor.Create(_identity, _onionKey, Endpoint, NetworkParameters.Default, T0);

        Assert.Equal(DescriptorError.NetworkMismatch, descriptor.Validate(expected, T0, Skew));
        Assert.Equal(DescriptorError.None, descriptor.Validate(NetworkParameters.Default with { }, T0, Skew));
    }

    [Fact]
    public void An_unknown_cell_construction_is_a_network_mismatch()
    {
        var raw = new RawDescriptor(_identity, _onionKey) { Construction = 3 };

        Assert.Equal(DescriptorError.None, NodeDescriptor.TryParse(raw.Encode(), out var descriptor));
        Assert.Equal(DescriptorError.NetworkMismatch, descriptor!.Validate(NetworkParameters.Default, T0, Skew));
    }

    [Fact]
    public void No_common_protocol_version()
    {
        var raw = new RawDescriptor(_identity, _onionKey) { Versions = [2, 3] };
        Assert.Equal(DescriptorError.None, NodeDescriptor.TryParse(raw.Encode(), out var descriptor));
        Assert.Equal(DescriptorError.NoCommonProtocolVersion, descriptor!.Validate(NetworkParameters.Default, T0, Skew));

        raw.Versions = [2, 1];
        Assert.Equal(DescriptorError.None, NodeDescriptor.TryParse(raw.Encode(), out descriptor));
        Assert.Equal(DescriptorError.None, descriptor!.Validate(NetworkParameters.Default, T0, Skew));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(9)]
    [InlineData(255)]
    public void A_protocol_version_count_outside_1_to_8_is_malformed(int count)
    {
        var raw = new RawDescriptor(_identity, _onionKey) { Versions = Enumerable.Repeat((byte)1, count).ToArray() };

        Assert.Equal(DescriptorError.Malformed, NodeDescriptor.TryParse(raw.Encode(), out _));
    }

    [Fact]
    public void Unknown_feature_bits_are_kept_and_ignored()
    {
        var raw = new RawDescriptor(_identity, _onionKey) { Features = 0xFFFF_FFFE };

        Assert.Equal(DescriptorError.None, NodeDescriptor.TryParse(raw.Encode(), out var descriptor));
        Assert.Equal(DescriptorError.None, descriptor!.Validate(NetworkParameters.Default, T0, Skew));
        Assert.False(descriptor.Features.HasFlag(DescriptorFeatures.SealedTraceContext));
        Assert.Equal(0xFFFF_FFFEu, (uint)descriptor.Features);
    }

    [Theory]
    [InlineData(long.MaxValue, 0, 0)]
    [InlineData(0, long.MinValue, 0)]
    [InlineData(0, 0, long.MaxValue)]
    [InlineData(1_000, 999, 0)]
    public void Unrepresentable_or_inverted_times_are_malformed(long validFrom, long expiresAt, long publishedAt)
    {
        var raw = new RawDescriptor(_identity, _onionKey) { ValidFrom = validFrom, ExpiresAt = expiresAt, PublishedAt = publishedAt };

        Assert.Equal(DescriptorError.Malformed, NodeDescriptor.TryParse(raw.Encode(), out _));
    }

    [Fact]
    public void Extreme_times_validate_without_throwing()
    {
        var raw = new RawDescriptor(_identity, _onionKey)
        {
            ValidFrom = DateTimeOffset.MinValue.ToUnixTimeSeconds(),
            ExpiresAt = DateTimeOffset.MaxValue.ToUnixTimeSeconds(),
            PublishedAt = DateTimeOffset.MinValue.ToUnixTimeSeconds(),
        };
        Assert.Equal(DescriptorError.None, NodeDescriptor.TryParse(raw.Encode(), out var descriptor));

        Assert.Equal(DescriptorError.None, descriptor!.Validate(NetworkParameters.Default, DateTimeOffset.MaxValue, TimeSpan.MaxValue));
        Assert.Equal(DescriptorError.None, descriptor.Validate(NetworkParameters.Default, DateTimeOffset.MinValue, Skew));
    }

    [Fact]
    public void A_signature_by_another_node_is_bad()
    {
        using var other = NodeIdentity.Create();
        var raw = new RawDescriptor(other, _onionKey) { NodeId = _identity.Id.AsSpan().ToArray() };

        Assert.Equal(DescriptorError.BadSignature, NodeDescriptor.TryParse(raw.Encode(), out _));
    }

    [Fact]
    public void Hostile_input_never_throws()
    {
        var random = new Random(1234);
        var valid = NodeDescriptor.Create(_identity, _onionKey, Endpoint, NetworkParameters.Default, T0).Encoded.ToArray();
        var accepted = 0;

        for (var n = 0; n < 20_000; n++)
        {
            byte[] input;
            if (n % 2 == 0)
            {
                input = new byte[random.Next(0, NodeDescriptor.MaxSize + 2)];
                random.NextBytes(input);
                if (input.Length > 0 && n % 4 == 0)
                {
                    input[0] = NodeDescriptor.FormatVersion;
                }
            }
            else
            {
                input = (byte[])valid.Clone();
                for (var k = random.Next(1, 4); k > 0; k--)
                {
                    input[random.Next(input.Length)] = (byte)random.Next(256);
                }
            }

            var error = NodeDescriptor.TryParse(input, out var descriptor);
            Assert.Equal(error == DescriptorError.None, descriptor is not null);
            if (descriptor is not null)
            {
                // Only a mutation that happened to write back the original bytes may be accepted.
                accepted++;
                Assert.Equal(valid, input);
            }
        }

        Assert.True(accepted < 100, $"{accepted} inputs were accepted");
    }

    [Fact]
    public void Every_error_has_its_own_description()
    {
        var descriptions = Enum.GetValues<DescriptorError>().Select(e => e.Describe()).ToArray();

        Assert.All(descriptions, d => Assert.False(string.IsNullOrWhiteSpace(d)));
        Assert.All(descriptions, d => Assert.DoesNotContain("unknown descriptor error", d, StringComparison.Ordinal));
        Assert.All(descriptions, d => Assert.DoesNotContain('\n', d));
        Assert.Equal(descriptions.Length, descriptions.Distinct().Count());
    }
}
