using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Server.Tests;

/// <summary><c>openssl cmp</c> pointed at the fixture's CMP endpoint, trusting the operator CA for the responses' protection.</summary>
public sealed class CmpClient(ServerFixture server)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public string Scratch(string name) => Path.Combine(server.Scratch, Guid.NewGuid().ToString("N") + "-" + name);

    /// <summary>A passing attestation of <paramref name="serial"/> posted over TLS with its IDevID (what an ir needs).</summary>
    public async Task AttestAsync(string serial, CancellationToken cancellationToken)
    {
        using var factory = server.FactoryCertificate(serial);
        using var unit = new EnrollmentClient(server, factory);
        await unit.AttestAsync(serial, factory, cancellationToken);
    }

    public Task<(int Exit, string Output)> IrAsync(string serial, string key, string certificate, params string[] extra)
        => RunAsync(["-cmd", "ir", "-cert", server.Layout.IDevIdCertificate(serial), "-key", server.Layout.IDevIdKey(serial), "-newkey", key,
            "-subject", "/CN=" + serial, "-certout", certificate, .. extra]);

    public Task<(int Exit, string Output)> RunAsync(params string[] args)
        => Tools.RunAsync("openssl", ["cmp", "-server", $"https://{server.EnrollmentHost}:{server.EnrollmentPort}", "-path", ".well-known/cmp", "-tls_used",
            "-tls_trusted", server.Layout.TlsRootCertificate, "-trusted", server.Layout.OperatorCaCertificate, .. args], Ct);

    public async Task<string> NewKeyAsync(string name)
    {
        var key = Scratch(name);
        await Tools.RunCheckedAsync("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key], Ct);
        return key;
    }
}
