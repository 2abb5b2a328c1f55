using System.Security.Cryptography;
using KtZeroTrust.SocConsole;
using KtZeroTrust.SocConsole.Accounts;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Console.Tests;

public sealed class ConsoleUsersTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AnAccountHashedWithOlderParameters_IsRehashedAtItsNextSignIn_AndOnlyThen()
    {
        using var temp = new TempDirectory();
        using var store = new FileConsoleAccountStore(temp.Combine("console-users.json"));
        // An account as saved before hashes carried their parameters: PBKDF2-SHA256, 210,000 iterations.
        var salt = RandomNumberGenerator.GetBytes(16);
        var legacy = Convert.ToBase64String(Rfc2898DeriveBytes.Pbkdf2("correct horse battery", salt, 210_000, HashAlgorithmName.SHA256, 32));
        Assert.True(await store.AddAsync(new ConsoleUsers.Account("ana", ConsoleRoles.Analyst, Convert.ToBase64String(salt), legacy, MustChangePassword: false), Ct));
        var users = new ConsoleUsers(store, Options.Create(new ConsoleOptions { PasswordHashAlgorithm = "pbkdf2-sha512", PasswordHashIterations = 300_000 }));

        Assert.Null(await users.VerifyAsync("ana", "wrong horse battery", Ct));
        Assert.Equal(legacy, (await store.FindAsync("ana", Ct))!.Hash); // a wrong password changes nothing

        var signedIn = await users.VerifyAsync("ana", "correct horse battery", Ct);
        Assert.NotNull(signedIn);
        var saved = (await store.FindAsync("ana", Ct))!;
        Assert.Equal(("pbkdf2-sha512", 300_000), saved.HashParameters);
        Assert.NotEqual(legacy, saved.Hash);
        Assert.Equal(64, Convert.FromBase64String(saved.Hash).Length);

        Assert.NotNull(await users.VerifyAsync("ana", "correct horse battery", Ct)); // the new hash verifies
        Assert.Equal(saved.Hash, (await store.FindAsync("ana", Ct))!.Hash); // and is not made again
        Assert.Null(await users.VerifyAsync("nobody", "correct horse battery", Ct));
    }

    [Fact]
    public void HashSettings_AreCheckedAtStart()
    {
        Assert.Empty(ConsoleUsers.Problems(new ConsoleOptions()));
        Assert.Single(ConsoleUsers.Problems(new ConsoleOptions { PasswordHashAlgorithm = "md5" }));
        Assert.Single(ConsoleUsers.Problems(new ConsoleOptions { PasswordHashIterations = 1_000 }));
    }
}
