using Google.Protobuf;
using Overlay.Onion;
using Overlay.Protocol;
using Overlay.Protocol.V1;

namespace Overlay.Tests.Protocol;

/// <summary>The size a node plans for a link message is the size protobuf writes.</summary>
public sealed class LinkLimitsTests
{
    [Theory]
    [InlineData(0, 0)]
    [InlineData(4277, 0)]
    [InlineData(0, 4096)]
    [InlineData(4277, 32768)]
    [InlineData(16309, 131072)]
    [InlineData(127, 128)]
    public void Message_size_matches_the_encoded_message(int headerBytes, int cellBytes)
    {
        var message = new LinkMessage
        {
            Header = UnsafeByteOperations.UnsafeWrap(new byte[headerBytes]),
            Cells = UnsafeByteOperations.UnsafeWrap(new byte[cellBytes]),
        };

        Assert.Equal(message.CalculateSize(), LinkLimits.MessageSize(headerBytes, cellBytes));
        Assert.Equal(message.ToByteArray().Length, LinkLimits.MessageSize(headerBytes, cellBytes));
    }

    [Fact]
    public void The_largest_message_is_a_header_with_a_full_batch_of_cells_and_its_framing()
    {
        var parameters = NetworkParameters.Default;
        var largest = LinkLimits.LargestMessage(parameters, 8);

        Assert.Equal(OnionHeader.SizeFor(parameters) + (8 * parameters.CellSize) + 7, largest);
    }
}
