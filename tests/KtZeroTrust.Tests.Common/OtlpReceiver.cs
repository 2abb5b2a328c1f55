using System.Collections.Concurrent;
using System.Net;
using System.Text;

namespace KtZeroTrust.Tests.Common;

/// <summary>
/// A stand-in OTLP/HTTP collector: accepts <c>/v1/logs</c> and <c>/v1/metrics</c> (application/x-protobuf), decodes
/// the protobuf by field number (the OTLP schema, below) and keeps what arrived. <see cref="FailRequests"/> makes it
/// answer 503, as a collector that is down or overloaded would.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Task _loop;

    public OtlpReceiver()
    {
        Port = FreePorts.Next();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public int Port { get; }

    public Uri Endpoint => new($"http://127.0.0.1:{Port}");

    public bool FailRequests { get; set; }

    public ConcurrentQueue<OtlpLogRecord> Logs { get; } = new();

    /// <summary>Every metric data point received, newest last: (metric name, attributes, value).</summary>
    public ConcurrentQueue<OtlpDataPoint> MetricPoints { get; } = new();

    private int _refused;

    public int RefusedRequests => Volatile.Read(ref _refused);

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception) when (!_listener.IsListening)
            {
                return;
            }
            catch (HttpListenerException)
            {
                return;
            }

            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            if (FailRequests)
            {
                Interlocked.Increment(ref _refused);
                context.Response.StatusCode = 503;
                context.Response.Close();
                continue;
            }

            var path = context.Request.Url!.AbsolutePath;
            var message = Proto.Parse(body.ToArray());
            if (path == "/v1/logs")
            {
                DecodeLogs(message);
            }
            else if (path == "/v1/metrics")
            {
                DecodeMetrics(message);
            }
            else
            {
                context.Response.StatusCode = 404;
            }

            context.Response.ContentType = "application/x-protobuf";
            context.Response.Close(); // an empty Export*ServiceResponse: full success
        }
    }

    // ExportLogsServiceRequest{1: ResourceLogs{1: Resource{1: KeyValue*}, 2: ScopeLogs{2: LogRecord*}}}
    private void DecodeLogs(Proto request)
    {
        foreach (var resourceLogs in request.Messages(1))
        {
            var resource = resourceLogs.Messages(1).Select(r => Attributes(r, 1)).FirstOrDefault() ?? new Dictionary<string, object>();
            foreach (var scope in resourceLogs.Messages(2))
            {
                foreach (var record in scope.Messages(2))
                {
                    // LogRecord{1: time_unix_nano fixed64, 2: severity_number, 3: severity_text, 5: body AnyValue, 6: attributes, 11: observed time}
                    Logs.Enqueue(new OtlpLogRecord(
                        DateTimeOffset.UnixEpoch.AddTicks((long)(record.Fixed(1) / 100)),
                        (int)record.Varint(2),
                        record.Messages(5).Select(AnyValue).FirstOrDefault() as string,
                        Attributes(record, 6),
                        resource));
                }
            }
        }
    }

    // ExportMetricsServiceRequest{1: ResourceMetrics{2: ScopeMetrics{2: Metric{1: name, 5: gauge, 7: sum{1: NumberDataPoint*}}}}}
    private void DecodeMetrics(Proto request)
    {
        foreach (var metric in request.Messages(1).SelectMany(r => r.Messages(2)).SelectMany(s => s.Messages(2)))
        {
            var name = metric.String(1) ?? "";
            foreach (var point in metric.Messages(5).Concat(metric.Messages(7)).SelectMany(g => g.Messages(1)))
            {
                // NumberDataPoint{4: as_double fixed64, 6: as_int sfixed64, 7: attributes}
                double value = point.Has(4) ? BitConverter.Int64BitsToDouble((long)point.Fixed(4)) : (long)point.Fixed(6);
                MetricPoints.Enqueue(new OtlpDataPoint(name, Attributes(point, 7), value));
            }
        }
    }

    private static Dictionary<string, object> Attributes(Proto message, int field)
        => message.Messages(field).Select(kv => (Key: kv.String(1) ?? "", Value: kv.Messages(2).Select(AnyValue).FirstOrDefault()))
            .Where(kv => kv.Value is not null)
            .GroupBy(kv => kv.Key).ToDictionary(g => g.Key, g => g.Last().Value!);

    // AnyValue{1: string, 2: bool, 3: int64, 4: double}
    private static object? AnyValue(Proto value)
        => value.Has(1) ? value.String(1) : value.Has(2) ? value.Varint(2) != 0 : value.Has(3) ? (long)value.Varint(3) : value.Has(4) ? BitConverter.Int64BitsToDouble((long)value.Fixed(4)) : null;

    public async ValueTask DisposeAsync()
    {
        // Close alone (it stops the listener): Stop and then Close would unregister the port twice, and the second time
        // binds it again to do so, which fails ("Address already in use") once another test has taken the port.
        _listener.Close();
        await _loop.ConfigureAwait(false);
    }

    /// <summary>A protobuf message decoded by field number, without a schema (wire types 0, 1, 2 and 5).</summary>
    private sealed class Proto
    {
        private readonly List<(int Field, ulong Number, ReadOnlyMemory<byte> Bytes)> _fields = [];

        public static Proto Parse(ReadOnlyMemory<byte> data)
        {
            var message = new Proto();
            var span = data.Span;
            var i = 0;
            while (i < span.Length)
            {
                var key = ReadVarint(span, ref i);
                var field = (int)(key >> 3);
                switch (key & 7)
                {
                    case 0:
                        message._fields.Add((field, ReadVarint(span, ref i), default));
                        break;
                    case 1:
                        message._fields.Add((field, BitConverter.ToUInt64(span.Slice(i, 8)), default));
                        i += 8;
                        break;
                    case 2:
                        var length = (int)ReadVarint(span, ref i);
                        message._fields.Add((field, 0, data.Slice(i, length)));
                        i += length;
                        break;
                    case 5:
                        message._fields.Add((field, BitConverter.ToUInt32(span.Slice(i, 4)), default));
                        i += 4;
                        break;
                    default:
                        throw new InvalidDataException($"Unsupported protobuf wire type {key & 7}.");
                }
            }

            return message;
        }

        public bool Has(int field) => _fields.Exists(f => f.Field == field);

        public IEnumerable<Proto> Messages(int field) => _fields.Where(f => f.Field == field).Select(f => Parse(f.Bytes)).ToList();

        public string? String(int field) => _fields.Where(f => f.Field == field).Select(f => Encoding.UTF8.GetString(f.Bytes.Span)).LastOrDefault();

        public ulong Varint(int field) => _fields.LastOrDefault(f => f.Field == field).Number;

        public ulong Fixed(int field) => _fields.LastOrDefault(f => f.Field == field).Number;

        private static ulong ReadVarint(ReadOnlySpan<byte> span, ref int i)
        {
            ulong value = 0;
            for (var shift = 0; ; shift += 7)
            {
                var b = span[i++];
                value |= (ulong)(b & 0x7f) << shift;
                if (b < 0x80)
                {
                    return value;
                }
            }
        }
    }
}

public sealed record OtlpLogRecord(DateTimeOffset Time, int SeverityNumber, string? Body, IReadOnlyDictionary<string, object> Attributes, IReadOnlyDictionary<string, object> Resource);

public sealed record OtlpDataPoint(string Name, IReadOnlyDictionary<string, object> Attributes, double Value);
