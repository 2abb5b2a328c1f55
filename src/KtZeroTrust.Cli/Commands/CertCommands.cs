using System.CommandLine;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.DevPki;
using KtZeroTrust.Pki.Issuance;

namespace KtZeroTrust.Cli.Commands;

internal static class CertCommands
{
    public static Command Create()
    {
        var serial = new Argument<string>("serial") { Description = "Device serial" };
        var validity = new Option<TimeSpan>("--validity")
        {
            Description = "Lifetime, e.g. 1.00:00:00 for one day (at most 30 days)",
            DefaultValueFactory = _ => TimeSpan.FromDays(1),
        };
        var outDir = new Option<string?>("--out-dir") { Description = "Where to write <serial>.pem and <serial>.key.pem. Default: <pki-dir>/ldevid" };
        var issue = new Command("issue", "DEVELOPMENT ONLY, until EST enrollment exists: issue an operational certificate (LDevID) from the operator CA and put it on the allow list")
        {
            serial, validity, outDir,
        };
        issue.SetAction(CliContext.Run(async (ctx, ct) =>
        {
            var layout = new DevPkiLayout(ctx.PkiDirectory);
            using var ca = new CertificateAuthority(PemFiles.ReadCertificateWithKey(layout.OperatorCaCertificate, layout.OperatorCaKey));
            if (!DevelopmentPki.IsDevelopmentCertificate(ca.Certificate))
            {
                await ctx.Error.WriteLineAsync("error: `cert issue` only works with the development PKI; production devices enroll over EST.");
                return ExitCodes.Refused;
            }

            var s = ctx.ParseResult.GetValue(serial)!;
            var issuer = new OperationalCertificateIssuer(ca, await ctx.OpenRegistryAsync(ct), TimeProvider.System);
            using var certificate = await issuer.IssueAsync(s, ctx.ParseResult.GetValue(validity), CliContext.Actor, ct);
            var directory = ctx.ParseResult.GetValue(outDir) is { } d ? Path.GetFullPath(d) : Path.GetDirectoryName(layout.LDevIdCertificate(s))!;
            var certPath = Path.Combine(directory, s + ".pem");
            var keyPath = Path.Combine(directory, s + ".key.pem");
            using (var key = certificate.GetECDsaPrivateKey()!)
            {
                PemFiles.WritePrivateKey(keyPath, key, overwrite: true);
            }

            PemFiles.WriteCertificate(certPath, certificate, overwrite: true);
            var hash = CertificateHash.Of(certificate).ToString();
            if (ctx.AsJson)
            {
                ctx.WriteJson(new { serial = s, certificate = certPath, key = keyPath, sha256 = hash, notAfter = certificate.NotAfter.ToUniversalTime() });
            }
            else
            {
                ctx.Out.WriteLine($"Issued {s}: {certPath} (key {keyPath}), sha256 {hash}, valid until {certificate.NotAfter.ToUniversalTime():u}");
            }

            return ExitCodes.Success;
        }));

        var files = new Argument<string[]>("certificates") { Description = "PEM files of device certificates the registry recorded without their key hash", Arity = ArgumentArity.OneOrMore };
        var backfill = new Command("backfill-keys", "Record the public-key hash of certificates issued before the registry kept it (so a reused key is refused as key_shared); reports keys bound to more than one device")
        {
            files,
        };
        backfill.SetAction(CliContext.Run(async (ctx, ct) =>
        {
            var certificates = new List<X509Certificate2>();
            try
            {
                foreach (var file in ctx.ParseResult.GetValue(files)!)
                {
                    certificates.Add(PemFiles.ReadCertificate(file));
                }

                var (filled, shared) = await (await ctx.OpenStoreAsync(ct)).BackfillPublicKeysAsync(certificates, ct);
                ctx.Out.WriteLine($"Recorded the key hash of {filled} certificate(s).");
                foreach (var key in shared)
                {
                    await ctx.Error.WriteLineAsync($"warning: public key {key} is bound to more than one device (a shared credential): revoke all but one");
                }

                return shared.Count == 0 ? ExitCodes.Success : ExitCodes.Refused;
            }
            finally
            {
                certificates.ForEach(c => c.Dispose());
            }
        }));

        return new Command("cert", "Device certificates") { issue, backfill };
    }
}
