using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Benchmarks.Infrastructure;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Pki.DevPki;
using KtZeroTrust.Registry.Sqlite;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.Nist;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Ocsp;
using BcCertificate = Org.BouncyCastle.X509.X509Certificate;

namespace KtZeroTrust.Benchmarks.Tools;

/// <summary>
/// The OCSP responder end to end: answers per second (POST over keep-alive TLS, each answer read from the registry and
/// signed with ECDSA P-256), next to the signatures per second one core can make (the physical limit of a signed
/// answer); then the time from a registry change (suspend, resume) to the first answer that shows it, p50/p99.
/// </summary>
internal static class OcspRate
{
    public static async Task<int> RunAsync(string[] args)
    {
        var seconds = Option(args, "--seconds", 10);
        var concurrency = Option(args, "--concurrency", 16);
        var flips = Option(args, "--flips", 50);
        var root = Propagation.FindRepositoryRoot();
        var serverDll = Path.Combine(root, "src/KtZeroTrust.Server/bin/Release/net10.0/KtZeroTrust.Server.dll");
        if (!File.Exists(serverDll))
        {
            Console.Error.WriteLine($"Build first: dotnet build -c Release ({serverDll} is missing).");
            return 2;
        }

        var work = Directory.CreateTempSubdirectory("ktzt-ocsp-").FullName;
        var pki = Path.Combine(work, "pki");
        Directory.CreateDirectory(pki);
        File.Copy(Path.Combine(root, "certs-dev/manifest.json"), Path.Combine(pki, "manifest.json"));
        File.Copy(Path.Combine(root, "certs-dev/reference.json"), Path.Combine(pki, "reference.json"));
        var server = ServerProcess.Start(serverDll, Path.Combine(work, "node"), "ocsp", ["--environment=Development", $"--ZeroTrust:Pki:Directory={pki}"]);
        try
        {
            await server.WaitListeningAsync(server.Ports[1]);
            var layout = new DevPkiLayout(pki);
            var issuer = new BcCertificate(X509CertificateLoader.LoadCertificateFromFile(layout.OperatorCaCertificate).RawData);
            var device = new BcCertificate(X509CertificateLoader.LoadCertificateFromFile(layout.LDevIdCertificate("FC-0003")).RawData);
            var generator = new OcspReqGenerator();
            generator.AddRequest(new CertificateID(new AlgorithmIdentifier(NistObjectIdentifiers.IdSha256, DerNull.Instance), issuer, device.SerialNumber)); // SHA-256 CertID (openssl asks with SHA-1; both are answered)
            var request = generator.Generate().GetEncoded();
            var url = new Uri($"https://127.0.0.1:{server.Ports[1]}/ocsp");
            using var tlsRoot = X509CertificateLoader.LoadCertificateFromFile(layout.TlsRootCertificate);
            using var http = new HttpClient(new SocketsHttpHandler
            {
                MaxConnectionsPerServer = concurrency,
                SslOptions = { RemoteCertificateValidationCallback = (_, c, _, _) => c is X509Certificate2 cert && cert.Issuer == tlsRoot.Subject },
            });

            async Task<object?> AskAsync()
            {
                using var content = new ByteArrayContent(request);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/ocsp-request");
                using var response = await http.PostAsync(url, content);
                var answer = new OcspResp(await response.Content.ReadAsByteArrayAsync());
                return answer.Status == OcspRespStatus.Successful ? ((BasicOcspResp)answer.GetResponseObject()).Responses[0].GetCertStatus() : answer;
            }

            for (var i = 0; i < 200; i++)
            {
                await AskAsync(); // warm up: connections, JIT, the responder's signer
            }

            var latencies = new List<double>();
            var stop = Stopwatch.StartNew();
            var workers = Enumerable.Range(0, concurrency).Select(async _ =>
            {
                var mine = new List<double>();
                while (stop.Elapsed.TotalSeconds < seconds)
                {
                    var start = Stopwatch.GetTimestamp();
                    if (await AskAsync() is not null)
                    {
                        throw new InvalidOperationException("FC-0003 was not good");
                    }

                    mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }

                return mine;
            }).ToList();
            foreach (var worker in workers)
            {
                latencies.AddRange(await worker);
            }

            var rate = latencies.Count / stop.Elapsed.TotalSeconds;
            latencies.Sort();
            Console.WriteLine($"OCSP POST, {concurrency} concurrent, {seconds} s: {rate:0} answers/s, p50 {Percentile(latencies, 0.5):0.00} ms, p99 {Percentile(latencies, 0.99):0.00} ms");
            var signs = SignaturesPerSecond();
            Console.WriteLine($"ECDSA P-256 signatures on one core: {signs:0}/s (one per answer; the server has {Environment.ProcessorCount} cores for TLS, HTTP, SQLite and signing): answers/s = {rate / signs:0.00}x of one core's signatures");

            // Registry change -> first answer that shows it. The registry is the server's own SQLite file, as ztctl writes it.
            var registry = new SqliteDeviceRegistry(Path.Combine(work, "node", "registry.db"), TimeProvider.System);
            var delays = new List<double>();
            for (var i = 0; i < flips; i++)
            {
                var suspend = i % 2 == 0;
                await registry.TransitionAsync("FC-0003", suspend ? DeviceLifecycleState.Suspended : DeviceLifecycleState.Active, "bench", "ocsp flip");
                var changed = Stopwatch.GetTimestamp();
                var asked = 0;
                while (true)
                {
                    asked++;
                    var status = await AskAsync();
                    if (suspend ? status is RevokedStatus : status is null)
                    {
                        break;
                    }
                }

                delays.Add(Stopwatch.GetElapsedTime(changed).TotalMilliseconds);
                if (asked != 1)
                {
                    Console.WriteLine($"  flip {i}: shown only by answer {asked}");
                }
            }

            delays.Sort();
            Console.WriteLine($"Registry change -> first answer showing it, {flips} suspend/resume flips: p50 {Percentile(delays, 0.5):0.00} ms, p99 {Percentile(delays, 0.99):0.00} ms (the very next answer each time unless listed above)");
            return 0;
        }
        finally
        {
            server.Dispose();
            Directory.Delete(work, recursive: true);
        }
    }

    private static double SignaturesPerSecond()
    {
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var data = new byte[32];
        var stop = Stopwatch.StartNew();
        var count = 0;
        while (stop.ElapsedMilliseconds < 2000)
        {
            key.SignHash(data);
            count++;
        }

        return count / stop.Elapsed.TotalSeconds;
    }

    private static double Percentile(List<double> sorted, double p) => sorted.Count == 0 ? 0 : sorted[Math.Min(sorted.Count - 1, (int)(p * sorted.Count))];

    private static int Option(string[] args, string name, int fallback)
        => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out var value) ? value : fallback;
}
