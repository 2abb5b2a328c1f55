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
/// console's shared Redis when there are several): PBKDF2-SHA256 password hashes. A new account gets a one-time
/// password that must be replaced at first login. With no account at all, the first start creates <c>admin</c>
/// (soc-admin) and prints its one-time password.
/// </summary>
public sealed class ConsoleUsers(IConsoleAccountStore store)
{
    private const int Iterations = 210_000;

    public sealed record Account(string Name, string Role, string Salt, string Hash, bool MustChangePassword);

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
        var hash = Rfc2898DeriveBytes.Pbkdf2(password ?? "", salt, Iterations, HashAlgorithmName.SHA256, 32);
        return account is not null && CryptographicOperations.FixedTimeEquals(hash, Convert.FromBase64String(account.Hash)) ? account : null;
    }

    public async Task ChangePasswordAsync(string name, string newPassword, CancellationToken cancellationToken = default)
    {
        if (newPassword is null || newPassword.Length < 12)
        {
            throw new ArgumentException("A new password has at least 12 characters.", nameof(newPassword));
        }

        var account = await store.FindAsync(name, cancellationToken) ?? throw new InvalidOperationException($"User '{name}' does not exist.");
        var (salt, hash) = Hash(newPassword);
        await store.SaveAsync(account with { Salt = salt, Hash = hash, MustChangePassword = false }, cancellationToken);
    }

    private static (string Password, Account Account) New(string name, string role)
    {
        var password = Convert.ToBase64String(RandomNumberGenerator.GetBytes(15)).Replace('+', 'x').Replace('/', 'y');
        var (salt, hash) = Hash(password);
        return (password, new Account(name, role, salt, hash, MustChangePassword: true));
    }

    private static (string Salt, string Hash) Hash(string password)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        return (Convert.ToBase64String(salt), Convert.ToBase64String(Rfc2898DeriveBytes.Pbkdf2(password, salt, Iterations, HashAlgorithmName.SHA256, 32)));
    }
}
