using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Overlay.Crypto;

/// <summary>
/// The few libsodium functions NSec does not expose in the form the hot paths need, called on the
/// libsodium library NSec itself ships and loads. NSec wraps every key and shared secret in guarded
/// memory (mmap, mprotect, mlock: several system calls each, which are expensive on the machines docs/benchmarks.md measured), which dominated tunnel set-up;
/// these calls take the secret where the caller keeps it: a stack buffer zeroed after use, or one
/// guarded allocation for a long-lived key (<see cref="SodiumSecret"/>).
/// </summary>
internal static partial class Sodium
{
    private const string Library = "libsodium";

    // First of the static fields (they initialise in order): sodium_init also detects the CPU's
    // features, which AesGcmAvailable asks about. Idempotent; 1 means NSec initialised it first.
    private static readonly int Initialised = sodium_init() >= 0
        ? 1
        : throw new InvalidOperationException("libsodium could not be initialised");

    // Explicit, so the fields above are initialised before any call here, not lazily at first field access.
    static Sodium()
    {
    }

    /// <summary>X25519 of <paramref name="scalar"/> and the peer's <paramref name="point"/>; false when the result is all zeros (a low-order point).</summary>
    public static bool ScalarMult(Span<byte> shared, ReadOnlySpan<byte> scalar, ReadOnlySpan<byte> point)
    {
        Check(shared, scalar, point);
        return crypto_scalarmult_curve25519(ref MemoryMarshal.GetReference(shared), ref MemoryMarshal.GetReference(scalar), ref MemoryMarshal.GetReference(point)) == 0;
    }

    /// <summary>X25519 of a guarded <paramref name="scalar"/> and the peer's <paramref name="point"/>; false for a low-order point.</summary>
    public static bool ScalarMult(Span<byte> shared, SodiumSecret scalar, ReadOnlySpan<byte> point)
    {
        Check(shared, shared, point);
        if (scalar.Length != 32)
        {
            throw new ArgumentException("X25519 scalars are 32 bytes", nameof(scalar));
        }

        using var lease = new HandleLease(scalar);
        return crypto_scalarmult_curve25519_guarded(ref MemoryMarshal.GetReference(shared), lease.Pointer, ref MemoryMarshal.GetReference(point)) == 0;
    }

    /// <summary>The X25519 public key of <paramref name="scalar"/>.</summary>
    public static void ScalarMultBase(Span<byte> publicKey, ReadOnlySpan<byte> scalar)
    {
        Check(publicKey, scalar, scalar);
        if (crypto_scalarmult_curve25519_base(ref MemoryMarshal.GetReference(publicKey), ref MemoryMarshal.GetReference(scalar)) != 0)
        {
            throw new CryptographicException("X25519 base-point multiplication failed");
        }
    }

    /// <summary>The X25519 public key of a guarded <paramref name="scalar"/>.</summary>
    public static void ScalarMultBase(Span<byte> publicKey, SodiumSecret scalar)
    {
        Check(publicKey, publicKey, publicKey);
        if (scalar.Length != 32)
        {
            throw new ArgumentException("X25519 scalars are 32 bytes", nameof(scalar));
        }

        using var lease = new HandleLease(scalar);
        if (crypto_scalarmult_curve25519_base_guarded(ref MemoryMarshal.GetReference(publicKey), lease.Pointer) != 0)
        {
            throw new CryptographicException("X25519 base-point multiplication failed");
        }
    }

    private static void Check(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, ReadOnlySpan<byte> c)
    {
        if (a.Length != 32 || b.Length != 32 || c.Length != 32)
        {
            throw new ArgumentException("X25519 scalars and points are 32 bytes");
        }
    }

    /// <summary>Whether libsodium's AES-256-GCM runs on this CPU (AES-NI and carry-less multiplication, or the ARM equivalents).</summary>
    public static bool AesGcmAvailable { get; } = Initialised == 1 && crypto_aead_aes256gcm_is_available() == 1;

    [LibraryImport(Library)]
    private static partial int crypto_aead_aes256gcm_is_available();

    /// <summary>The size of libsodium's precomputed AES-GCM state (<c>crypto_aead_aes256gcm_state</c>) in this build of the library.</summary>
    public static int AesGcmStateSize { get; } = checked((int)crypto_aead_aes256gcm_statebytes());

    [LibraryImport(Library)]
    private static partial nuint crypto_aead_aes256gcm_statebytes();

    [LibraryImport(Library)]
    internal static partial int crypto_aead_aes256gcm_beforenm(nint state, ref byte key);

    [LibraryImport(Library)]
    internal static partial int crypto_aead_aes256gcm_encrypt_detached_afternm(ref byte c, ref byte mac, nint maclen, ref byte m, ulong mlen,
        nint ad, ulong adlen, nint nsec, ref byte npub, nint state);

    [LibraryImport(Library)]
    internal static partial int crypto_aead_aes256gcm_decrypt_detached_afternm(ref byte m, nint nsec, ref byte c, ulong clen, ref byte mac,
        nint ad, ulong adlen, ref byte npub, nint state);

    [LibraryImport(Library)]
    private static partial int sodium_init();

    [LibraryImport(Library)]
    private static partial int crypto_scalarmult_curve25519(ref byte q, ref byte n, ref byte p);

    [LibraryImport(Library, EntryPoint = "crypto_scalarmult_curve25519")]
    private static partial int crypto_scalarmult_curve25519_guarded(ref byte q, nint n, ref byte p);

    [LibraryImport(Library)]
    private static partial int crypto_scalarmult_curve25519_base(ref byte q, ref byte n);

    [LibraryImport(Library, EntryPoint = "crypto_scalarmult_curve25519_base")]
    private static partial int crypto_scalarmult_curve25519_base_guarded(ref byte q, nint n);

    [LibraryImport(Library)]
    internal static partial nint sodium_malloc(nuint size);

    [LibraryImport(Library)]
    internal static partial void sodium_free(nint pointer);

    [LibraryImport(Library)]
    internal static partial void randombytes_buf(nint buffer, nuint size);
}

/// <summary>
/// A secret of fixed size in libsodium's guarded memory (guard pages, locked, zeroed when freed),
/// for the few long-lived keys used on every tunnel set-up (onion keys). Freed only when no call is using it.
/// </summary>
internal sealed class SodiumSecret : SafeHandle
{
    private SodiumSecret(int length)
        : base(0, ownsHandle: true)
    {
        SetHandle(Sodium.sodium_malloc((nuint)length));
        if (IsInvalid)
        {
            throw new OutOfMemoryException("libsodium could not allocate guarded memory for a key");
        }

        Length = length;
    }

    public int Length { get; }

    public override bool IsInvalid => handle == 0;

    /// <summary>Fresh random bytes from libsodium's generator.</summary>
    public static SodiumSecret Random(int length)
    {
        var secret = new SodiumSecret(length);
        Sodium.randombytes_buf(secret.handle, (nuint)length);
        return secret;
    }

    /// <summary>A guarded copy of <paramref name="bytes"/>.</summary>
    public static unsafe SodiumSecret Copy(ReadOnlySpan<byte> bytes)
    {
        var secret = new SodiumSecret(bytes.Length);
        bytes.CopyTo(new Span<byte>((void*)secret.handle, bytes.Length));
        return secret;
    }

    /// <summary>Copies the bytes out (to persist the key); the caller zeroes its copy.</summary>
    public unsafe void CopyTo(Span<byte> destination)
    {
        using var lease = new HandleLease(this);
        new ReadOnlySpan<byte>((void*)lease.Pointer, Length).CopyTo(destination);
    }

    protected override bool ReleaseHandle()
    {
        Sodium.sodium_free(handle);
        return true;
    }
}

/// <summary>
/// Native memory of a fixed size and alignment for libsodium state derived from a key (an AES-GCM
/// key schedule and GHASH powers), zeroed and freed when the last call using it has returned, or by
/// the finalizer if nobody disposed it.
/// </summary>
internal sealed class AlignedSecretState : SafeHandle
{
    public unsafe AlignedSecretState(int size, int alignment)
        : base(0, ownsHandle: true)
    {
        SetHandle((nint)NativeMemory.AlignedAlloc((nuint)size, (nuint)alignment));
        Size = size;
    }

    public int Size { get; }

    public override bool IsInvalid => handle == 0;

    protected override unsafe bool ReleaseHandle()
    {
        CryptographicOperations.ZeroMemory(new Span<byte>((void*)handle, Size));
        NativeMemory.AlignedFree((void*)handle);
        return true;
    }
}

/// <summary>
/// Keeps a safe handle's memory alive while native code uses it: a dispose racing the call frees the
/// memory after the lease ends, and a handle already disposed throws <see cref="ObjectDisposedException"/>.
/// </summary>
internal readonly ref struct HandleLease
{
    private readonly SafeHandle _handle;

    public HandleLease(SafeHandle handle)
    {
        var added = false;
        handle.DangerousAddRef(ref added);
        _handle = handle;
        Pointer = handle.DangerousGetHandle();
    }

    public nint Pointer { get; }

    public void Dispose() => _handle.DangerousRelease();
}
