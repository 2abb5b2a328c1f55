using System.Buffers.Binary;
using System.Text;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;

namespace KtZeroTrust.Core.AllowList;

/// <summary>
/// The compact binary form of allow-list entries shared through Redis (cache values and change messages).
/// Entry: format (1) | SHA-256 (32) | version (8) | state (1) | flags (1) | not-before ticks (8) | not-after ticks (8) |
/// serial length (1) | serial (ASCII), then in format 2: model length (1) | model (UTF-8) | site length (1) | site (UTF-8)
/// (length 255 = absent), then in format 3: state reason length (1) | state reason (UTF-8, cut to 254 bytes). An entry
/// without a state reason is written in format 2, so nodes of the previous release keep reading what concerns them.
/// Format 1 entries (no model, no site) are still read. A batch: format (1) | count (4) |
/// entries. Integers big-endian.
/// Anything else is refused with <see cref="FormatException"/>: a node never trusts bytes it cannot read.
/// </summary>
public static class AllowListEntryCodec
{
    public const byte FormatVersion = 3;
    private const byte FormatWithoutStateReason = 2;
    private const byte Absent = 255;
    private const int FixedSize = 1 + CertificateHash.Size + 8 + 1 + 1 + 8 + 8 + 1;
    private const int MaxBatchCount = 100_000;

    public static int SizeOf(AllowListEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return FixedSize + entry.DeviceSerial.Length + 2 + Bytes(entry.Model) + Bytes(entry.Site) + (entry.StateReason is null ? 0 : 1 + Bytes(StateReason(entry)));
    }

    public static byte[] Encode(AllowListEntry entry)
    {
        var bytes = new byte[SizeOf(entry)];
        Write(entry, bytes);
        return bytes;
    }

    public static byte[] EncodeBatch(IReadOnlyList<AllowListEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var size = 5;
        foreach (var e in entries)
        {
            size += SizeOf(e);
        }

        var bytes = new byte[size];
        bytes[0] = entries.Any(e => e.StateReason is not null) ? FormatVersion : FormatWithoutStateReason;
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(1), entries.Count);
        var at = 5;
        foreach (var e in entries)
        {
            at += Write(e, bytes.AsSpan(at));
        }

        return bytes;
    }

    public static AllowListEntry Decode(ReadOnlySpan<byte> bytes)
    {
        var entry = Read(bytes, out var used);
        return used == bytes.Length ? entry : throw new FormatException("Allow-list entry has trailing bytes.");
    }

    public static IReadOnlyList<AllowListEntry> DecodeBatch(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 5 || bytes[0] is not (1 or FormatWithoutStateReason or FormatVersion))
        {
            throw new FormatException("Not an allow-list batch (bad header or unknown format version).");
        }

        var count = BinaryPrimitives.ReadInt32BigEndian(bytes[1..]);
        if (count is < 0 or > MaxBatchCount)
        {
            throw new FormatException($"Allow-list batch count {count} is out of range.");
        }

        var list = new List<AllowListEntry>(count);
        var at = 5;
        for (var i = 0; i < count; i++)
        {
            list.Add(Read(bytes[at..], out var used));
            at += used;
        }

        return at == bytes.Length ? list : throw new FormatException("Allow-list batch has trailing bytes.");
    }

    private static int Write(AllowListEntry entry, Span<byte> destination)
    {
        if (!DeviceSerial.IsValid(entry.DeviceSerial))
        {
            throw new ArgumentException($"'{entry.DeviceSerial}' is not a valid device serial.", nameof(entry));
        }

        destination[0] = entry.StateReason is null ? FormatWithoutStateReason : FormatVersion;
        entry.CertificateHash.CopyTo(destination[1..]);
        var at = 1 + CertificateHash.Size;
        BinaryPrimitives.WriteInt64BigEndian(destination[at..], entry.Version);
        destination[at + 8] = (byte)entry.State;
        destination[at + 9] = entry.CertificateRevoked ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteInt64BigEndian(destination[(at + 10)..], entry.NotBeforeUtcTicks);
        BinaryPrimitives.WriteInt64BigEndian(destination[(at + 18)..], entry.NotAfterUtcTicks);
        destination[at + 26] = (byte)entry.DeviceSerial.Length;
        var written = FixedSize + Encoding.ASCII.GetBytes(entry.DeviceSerial, destination[(at + 27)..]);
        written += WriteText(entry.Model, destination[written..]);
        written += WriteText(entry.Site, destination[written..]);
        if (entry.StateReason is not null)
        {
            written += WriteText(StateReason(entry), destination[written..]);
        }

        return written;
    }

    /// <summary>
    /// The state reason as carried: free text from an operator, so cut to what fits (254 bytes, on a whole character).
    /// Short reasons, the usual case, are returned as they are.
    /// </summary>
    private static string StateReason(AllowListEntry entry)
    {
        var text = entry.StateReason!;
        if (text.Length < Absent / 3 || Encoding.UTF8.GetByteCount(text) < Absent)
        {
            return text; // a UTF-16 char is at most 3 UTF-8 bytes: below 85 chars it always fits
        }

        // At most 254 chars can fit; walk back from there to the longest prefix that fits, never splitting a pair.
        var length = Math.Min(text.Length, Absent - 1);
        while (length > 0 && (Encoding.UTF8.GetByteCount(text.AsSpan(0, length)) >= Absent || char.IsHighSurrogate(text[length - 1])))
        {
            length--;
        }

        return text[..length];
    }

    private static int Bytes(string? text) => text is null ? 0 : Encoding.UTF8.GetByteCount(text);

    private static int WriteText(string? text, Span<byte> destination)
    {
        if (text is null)
        {
            destination[0] = Absent;
            return 1;
        }

        var length = Encoding.UTF8.GetBytes(text, destination[1..]);
        if (length >= Absent)
        {
            throw new ArgumentException($"'{text}' is longer than 254 bytes.", nameof(text));
        }

        destination[0] = (byte)length;
        return 1 + length;
    }

    private static string? ReadText(ReadOnlySpan<byte> bytes, ref int at)
    {
        if (at >= bytes.Length)
        {
            throw new FormatException("Allow-list entry is truncated (model or site).");
        }

        var length = bytes[at++];
        if (length == Absent)
        {
            return null;
        }

        if (at + length > bytes.Length)
        {
            throw new FormatException("Allow-list entry is truncated (model or site).");
        }

        var text = Encoding.UTF8.GetString(bytes.Slice(at, length));
        at += length;
        return text;
    }

    private static AllowListEntry Read(ReadOnlySpan<byte> bytes, out int used)
    {
        if (bytes.Length < FixedSize || bytes[0] is not (1 or FormatWithoutStateReason or FormatVersion))
        {
            throw new FormatException("Allow-list entry is truncated or of an unknown format version.");
        }

        var at = 1 + CertificateHash.Size;
        var state = (DeviceLifecycleState)bytes[at + 8];
        var flags = bytes[at + 9];
        var serialLength = bytes[at + 26];
        if (!Enum.IsDefined(state) || flags > 1 || bytes.Length < FixedSize + serialLength)
        {
            throw new FormatException("Allow-list entry has an unknown state, unknown flags or a truncated serial.");
        }

        var serial = Encoding.ASCII.GetString(bytes.Slice(FixedSize, serialLength));
        if (!DeviceSerial.IsValid(serial))
        {
            throw new FormatException("Allow-list entry carries an invalid device serial.");
        }

        used = FixedSize + serialLength;
        string? model = null, site = null, stateReason = null;
        if (bytes[0] >= FormatWithoutStateReason)
        {
            model = ReadText(bytes, ref used);
            site = ReadText(bytes, ref used);
        }

        if (bytes[0] == FormatVersion)
        {
            stateReason = ReadText(bytes, ref used);
        }

        return new AllowListEntry
        {
            StateReason = stateReason,
            Model = model,
            Site = site,
            CertificateHash = new CertificateHash(bytes.Slice(1, CertificateHash.Size)),
            Version = BinaryPrimitives.ReadInt64BigEndian(bytes[at..]),
            State = state,
            CertificateRevoked = flags == 1,
            NotBeforeUtcTicks = BinaryPrimitives.ReadInt64BigEndian(bytes[(at + 10)..]),
            NotAfterUtcTicks = BinaryPrimitives.ReadInt64BigEndian(bytes[(at + 18)..]),
            DeviceSerial = serial,
        };
    }
}
