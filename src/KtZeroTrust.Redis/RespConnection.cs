using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace KtZeroTrust.Redis;

/// <summary>
/// One physical connection: socket, optional TLS, pipes, and the handshake (HELLO or AUTH, SELECT, client name).
/// The multiplexer and the subscriber each own one and run their own read and write loops over its pipes.
/// </summary>
internal sealed class RespConnection : IAsyncDisposable
{
    private readonly Stream _stream;

    private RespConnection(Stream stream, string endpoint)
    {
        _stream = stream;
        Endpoint = endpoint;
        Input = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024));
        Output = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 16 * 1024));
    }

    public string Endpoint { get; }
    public PipeReader Input { get; }
    public PipeWriter Output { get; }

    /// <summary>When bytes last arrived (Stopwatch ticks): liveness for timeouts and heartbeats.</summary>
    public long LastReceived => Volatile.Read(ref _lastReceived);

    private long _lastReceived = System.Diagnostics.Stopwatch.GetTimestamp();

    /// <summary>
    /// The read loop: hands every complete reply to <paramref name="onReply"/>, then calls <paramref name="onBatchEnd"/>
    /// once per read. Ends by throwing: a protocol error, or <see cref="RedisConnectionException"/> when the peer closes.
    /// </summary>
    public async Task ReadRepliesAsync(Action<RedisReply> onReply, Action onBatchEnd)
    {
        while (true)
        {
            var result = await Input.ReadAsync();
            var buffer = result.Buffer;
            Volatile.Write(ref _lastReceived, System.Diagnostics.Stopwatch.GetTimestamp());
            var consumed = buffer.Start;
            try
            {
                var reader = new SequenceReader<byte>(buffer);
                while (true)
                {
                    var attempt = reader;
                    if (!RespParser.TryRead(ref attempt, out var reply))
                    {
                        break;
                    }

                    reader = attempt;
                    consumed = reader.Position;
                    onReply(reply!);
                }
            }
            finally
            {
                onBatchEnd();
            }

            Input.AdvanceTo(consumed, buffer.End);
            if (result.IsCompleted)
            {
                throw new RedisConnectionException(Endpoint, "the server closed the connection", null);
            }
        }
    }

    public static async Task<RespConnection> OpenAsync(RedisOptions options, CancellationToken cancellationToken)
    {
        var endpoint = options.Endpoint;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.ConnectTimeout);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Stream? stream = null;
        try
        {
            await socket.ConnectAsync(options.Host, options.Port, timeout.Token);
            stream = new NetworkStream(socket, ownsSocket: true);
            if (options.Ssl)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = ssl;
                await ssl.AuthenticateAsClientAsync(ClientTls(options), timeout.Token);
            }

            var connection = new RespConnection(stream, endpoint);
            await connection.HandshakeAsync(options, timeout.Token);
            return connection;
        }
        catch (Exception ex)
        {
            if (stream is not null)
            {
                await stream.DisposeAsync();
            }

            socket.Dispose();
            throw ex switch
            {
                OperationCanceledException when cancellationToken.IsCancellationRequested => ex,
                OperationCanceledException => new RedisConnectionException(endpoint, $"connect timed out after {options.ConnectTimeout.TotalMilliseconds:0} ms", ex),
                SocketException se => new RedisConnectionException(endpoint, $"connect failed: {se.SocketErrorCode} ({se.Message})", ex),
                AuthenticationException => new RedisConnectionException(endpoint, $"TLS handshake failed: {ex.Message}", ex),
                IOException => new RedisConnectionException(endpoint, $"connection failed during set-up: {ex.Message}", ex),
                RedisException => ex,
                _ => new RedisConnectionException(endpoint, $"connect failed: {ex.Message}", ex),
            };
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Input.CompleteAsync();
        await Output.CompleteAsync();
        await _stream.DisposeAsync();
    }

    /// <summary>Closes the socket now, which ends any read or write in progress on it.</summary>
    public void Abort() => _stream.Dispose();

    private static SslClientAuthenticationOptions ClientTls(RedisOptions options)
    {
        var tls = new SslClientAuthenticationOptions
        {
            TargetHost = options.SslHost ?? options.Host,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        if (options.SslCaFile is not null)
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPemFile(options.SslCaFile);
            tls.CertificateChainPolicy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
            };
            tls.CertificateChainPolicy.CustomTrustStore.AddRange(roots);
        }

        return tls;
    }

    private async Task HandshakeAsync(RedisOptions options, CancellationToken cancellationToken)
    {
        if (options.Protocol == 3)
        {
            var args = new List<RedisArg> { 3 };
            if (options.Password is not null)
            {
                args.AddRange(["AUTH", options.User ?? "default", options.Password]);
            }

            if (options.ClientName is not null)
            {
                args.AddRange(["SETNAME", options.ClientName]);
            }

            await RoundTripAsync("HELLO", [.. args], "HELLO", cancellationToken);
        }
        else
        {
            if (options.Password is not null)
            {
                await RoundTripAsync("AUTH", options.User is null ? [options.Password] : [options.User, options.Password], "AUTH", cancellationToken);
            }

            if (options.ClientName is not null)
            {
                await RoundTripAsync("CLIENT", ["SETNAME", options.ClientName], "CLIENT SETNAME", cancellationToken);
            }
        }

        if (options.Database != 0)
        {
            await RoundTripAsync("SELECT", [options.Database], "SELECT", cancellationToken);
        }
    }

    /// <summary>Set-up only: sends one command and reads exactly its reply, before the loops start.</summary>
    private async Task RoundTripAsync(string command, RedisArg[] args, string what, CancellationToken cancellationToken)
    {
        var buffer = RespWriter.Encode(command, args, out var length);
        try
        {
            await Output.WriteAsync(buffer.AsMemory(0, length), cancellationToken);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        while (true)
        {
            var result = await Input.ReadAsync(cancellationToken);
            var reader = new SequenceReader<byte>(result.Buffer);
            if (RespParser.TryRead(ref reader, out var reply))
            {
                Input.AdvanceTo(reader.Position);
                if (reply!.IsError)
                {
                    throw new RedisServerException(reply.AsString() ?? "", what, $"Redis {Endpoint} refused {what}");
                }

                return;
            }

            Input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            if (result.IsCompleted)
            {
                throw new RedisConnectionException(Endpoint, $"the server closed the connection during {what}", null);
            }
        }
    }
}
