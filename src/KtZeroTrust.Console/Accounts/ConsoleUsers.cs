using System.Security.Cryptography;
using System.Text.Json;

namespace KtZeroTrust.SocConsole.Accounts;

/// <summary>The console's roles: analysts read and acknowledge; administrators also act on devices and add users.</summary>
public static class ConsoleRoles
{
    public const string Analyst = "soc-analyst";
    public const string Admin = "soc-admin";

    public static bool IsValid(string role) => role is Analyst or Admin;
}

/// <summary>
/// Local console accounts in a JSON file (<c>{DataDirectory}/console-users.json</c>): PBKDF2-SHA256 password hashes. A
/// new account gets a one-time password that must be replaced at first login. With no account at all, the first start
/// creates <c>admin</c> (soc-admin) and prints its one-time password.
/// </summary>
public sealed class ConsoleUsers(string path)
{
    private const int Iterations = 210_000;
    private readonly object _gate = new();
    private Dictionary<string, Account>? _accounts;

    public sealed record Account(string Name, string Role, string Salt, string Hash, bool MustChangePassword);

    public string FilePath => path;

    /// <summary>Creates the first administrator when there is no account; returns its one-time password, or null.</summary>
    public string? EnsureAdministrator()
    {
        lock (_gate)
        {
            return Accounts().Count > 0 ? null : AddLocked("admin", ConsoleRoles.Admin);
        }
    }

    /// <summary>Adds an account with a one-time password (returned once, never stored in clear).</summary>
    public string Add(string name, string role)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Length > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '@'))
        {
            throw new ArgumentException("A user name is 1-64 letters, digits, '-', '_', '.' or '@'.", nameof(name));
        }

        if (!ConsoleRoles.IsValid(role))
        {
            throw new ArgumentException($"Role must be {ConsoleRoles.Analyst} or {ConsoleRoles.Admin}.", nameof(role));
        }

        lock (_gate)
        {
            if (Accounts().ContainsKey(name))
            {
                throw new InvalidOperationException($"User '{name}' exists.");
            }

            return AddLocked(name, role);
        }
    }

    /// <summary>The account when the password is right (constant-time comparison); null otherwise.</summary>
    public Account? Verify(string name, string password)
    {
        Account? account;
        lock (_gate)
        {
            Accounts().TryGetValue(name ?? "", out account);
        }

        // Hash even for an unknown user, so timing does not tell which names exist.
        var salt = account is null ? new byte[16] : Convert.FromBase64String(account.Salt);
        var hash = Rfc2898DeriveBytes.Pbkdf2(password ?? "", salt, Iterations, HashAlgorithmName.SHA256, 32);
        return account is not null && CryptographicOperations.FixedTimeEquals(hash, Convert.FromBase64String(account.Hash)) ? account : null;
    }

    public void ChangePassword(string name, string newPassword)
    {
        if (newPassword is null || newPassword.Length < 12)
        {
            throw new ArgumentException("A new password has at least 12 characters.", nameof(newPassword));
        }

        lock (_gate)
        {
            var accounts = Accounts();
            var account = accounts[name];
            var (salt, hash) = Hash(newPassword);
            accounts[name] = account with { Salt = salt, Hash = hash, MustChangePassword = false };
            Save(accounts);
        }
    }

    private string AddLocked(string name, string role)
    {
        var password = Convert.ToBase64String(RandomNumberGenerator.GetBytes(15)).Replace('+', 'x').Replace('/', 'y');
        var (salt, hash) = Hash(password);
        var accounts = Accounts();
        accounts[name] = new Account(name, role, salt, hash, MustChangePassword: true);
        Save(accounts);
        return password;
    }

    private static (string Salt, string Hash) Hash(string password)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        return (Convert.ToBase64String(salt), Convert.ToBase64String(Rfc2898DeriveBytes.Pbkdf2(password, salt, Iterations, HashAlgorithmName.SHA256, 32)));
    }

    private Dictionary<string, Account> Accounts()
    {
        if (_accounts is null)
        {
            _accounts = File.Exists(path)
                ? JsonSerializer.Deserialize<List<Account>>(File.ReadAllText(path))?.ToDictionary(a => a.Name, StringComparer.Ordinal) ?? []
                : new Dictionary<string, Account>(StringComparer.Ordinal);
        }

        return _accounts;
    }

    private void Save(Dictionary<string, Account> accounts)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, JsonSerializer.Serialize(accounts.Values.OrderBy(a => a.Name, StringComparer.Ordinal)));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        File.Move(temporary, path, overwrite: true);
    }
}
