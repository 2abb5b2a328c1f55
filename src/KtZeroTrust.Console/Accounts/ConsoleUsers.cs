using System.Security.Cryptography;

namespace KtZeroTrust.SocConsole.Accounts;

/// <summary>The console's roles: analysts read and acknowledge; administrators also act on devices and add users.</summary>
public static class ConsoleRoles
{
    public const string Analyst = "soc-analyst";
    public const string Admin = "soc-admin";

    public static bool IsValid(string role) => role is Analyst or Admin;
}

/// <summary>
/// Local console accounts in an <see cref="IConsoleAccountStore"/> (a JSON file in the data directory on one node; the
/// console's shared Redis when there are several): PBKDF2 password hashes, each with the algorithm and iterations it was
/// made with (accounts saved before those were kept: PBKDF2-SHA256, 210,000), rehashed with the configured ones at the
/// next successful sign-in when they differ. A new account gets a one-time
/// password that must be replaced at first login. With no account at all, the first start creates <c>admin</c>
/// (soc-admin) and prints its one-time password.
/// </summary>
public sealed class ConsoleUsers(IConsoleAccountStore store, Microsoft.Extensions.Options.IOptions<ConsoleOptions> options)
{
    /// <summary>What hashes saved without parameters were made with.</summary>
    private const string LegacyAlgorithm = "pbkdf2-sha256";
    private const int LegacyIterations = 210_000;

    public sealed record Account(string Name, string Role, string Salt, string Hash, bool MustChangePassword, string? Algorithm = null, int Iterations = 0)
    {
        public (string Algorithm, int Iterations) HashParameters => (Algorithm ?? LegacyAlgorithm, Iterations > 0 ? Iterations : LegacyIterations);
    }

    private (string Algorithm, int Iterations) Current => (options.Value.PasswordHashAlgorithm, options.Value.PasswordHashIterations);

    /// <summary>Where the accounts are, for the operator (a file path or the Redis key).</summary>
    public string Location => store.Location;

    /// <summary>Creates the first administrator when there is no account; returns its one-time password, or null.</summary>
    public async Task<string?> EnsureAdministratorAsync(CancellationToken cancellationToken = default)
    {
        if (await store.AnyAsync(cancellationToken))
        {
            return null;
        }

        var (password, account) = New("admin", ConsoleRoles.Admin);
        return await store.AddAsync(account, cancellationToken) ? password : null; // another node made it first: it printed the password
    }

    /// <summary>Adds an account with a one-time password (returned once, never stored in clear).</summary>
    public async Task<string> AddAsync(string name, string role, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Length > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '@'))
        {
            throw new ArgumentException("A user name is 1-64 letters, digits, '-', '_', '.' or '@'.", nameof(name));
        }

        if (!ConsoleRoles.IsValid(role))
        {
            throw new ArgumentException($"Role must be {ConsoleRoles.Analyst} or {ConsoleRoles.Admin}.", nameof(role));
        }

        var (password, account) = New(name, role);
        return await store.AddAsync(account, cancellationToken) ? password : throw new InvalidOperationException($"User '{name}' exists.");
    }

    /// <summary>The account when the password is right (constant-time comparison); null otherwise.</summary>
    public async Task<Account?> VerifyAsync(string name, string password, CancellationToken cancellationToken = default)
    {
        var account = await store.FindAsync(name ?? "", cancellationToken);

        // Hash even for an unknown user, so timing does not tell which names exist.
        var salt = account is null ? new byte[16] : Convert.FromBase64String(account.Salt);
        var parameters = account?.HashParameters ?? Current;
        var hash = Derive(password ?? "", salt, parameters);
        if (account is null || !CryptographicOperations.FixedTimeEquals(hash, Convert.FromBase64String(account.Hash)))
        {
            return null;
        }

        if (parameters != Current)
        {
            // The password is known right now: the one moment an old hash can be replaced by a stronger one.
            var (newSalt, newHash) = Hash(password!);
            account = account with { Salt = newSalt, Hash = newHash, Algorithm = Current.Algorithm, Iterations = Current.Iterations };
            await store.SaveAsync(account, cancellationToken);
        }

        return account;
    }

    public async Task ChangePasswordAsync(string name, string newPassword, CancellationToken cancellationToken = default)
    {
        if (newPassword is null || newPassword.Length < 12)
        {
            throw new ArgumentException("A new password has at least 12 characters.", nameof(newPassword));
        }

        var account = await store.FindAsync(name, cancellationToken) ?? throw new InvalidOperationException($"User '{name}' does not exist.");
        var (salt, hash) = Hash(newPassword);
        await store.SaveAsync(account with { Salt = salt, Hash = hash, MustChangePassword = false, Algorithm = Current.Algorithm, Iterations = Current.Iterations }, cancellationToken);
    }

    private (string Password, Account Account) New(string name, string role)
    {
        var password = Convert.ToBase64String(RandomNumberGenerator.GetBytes(15)).Replace('+', 'x').Replace('/', 'y');
        var (salt, hash) = Hash(password);
        return (password, new Account(name, role, salt, hash, MustChangePassword: true, Current.Algorithm, Current.Iterations));
    }

    private (string Salt, string Hash) Hash(string password)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        return (Convert.ToBase64String(salt), Convert.ToBase64String(Derive(password, salt, Current)));
    }

    private static byte[] Derive(string password, byte[] salt, (string Algorithm, int Iterations) parameters) => parameters.Algorithm switch
    {
        "pbkdf2-sha256" => Rfc2898DeriveBytes.Pbkdf2(password, salt, parameters.Iterations, HashAlgorithmName.SHA256, 32),
        "pbkdf2-sha512" => Rfc2898DeriveBytes.Pbkdf2(password, salt, parameters.Iterations, HashAlgorithmName.SHA512, 64),
        _ => throw new InvalidOperationException($"Unknown password hash algorithm '{parameters.Algorithm}'."),
    };

    /// <summary>What is wrong with the hash settings (checked at start).</summary>
    public static IEnumerable<string> Problems(ConsoleOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.PasswordHashAlgorithm is not ("pbkdf2-sha256" or "pbkdf2-sha512"))
        {
            yield return $"{ConsoleOptions.SectionName}:PasswordHashAlgorithm is pbkdf2-sha256 or pbkdf2-sha512 (it is '{options.PasswordHashAlgorithm}').";
        }

        if (options.PasswordHashIterations is < 100_000 or > 10_000_000)
        {
            yield return $"{ConsoleOptions.SectionName}:PasswordHashIterations is between 100,000 and 10,000,000 (it is {options.PasswordHashIterations}).";
        }
    }
}
