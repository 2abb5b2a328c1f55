using System.Text.Json;
using KtZeroTrust.Redis;
using StackExchange.Redis;

namespace KtZeroTrust.SocConsole.Accounts;

/// <summary>Where console accounts (name, role, salted hash) are kept.</summary>
public interface IConsoleAccountStore
{
    string Location { get; }

    Task<bool> AnyAsync(CancellationToken cancellationToken);

    Task<ConsoleUsers.Account?> FindAsync(string name, CancellationToken cancellationToken);

    /// <summary>Adds <paramref name="account"/>; false when the name is taken.</summary>
    Task<bool> AddAsync(ConsoleUsers.Account account, CancellationToken cancellationToken);

    Task SaveAsync(ConsoleUsers.Account account, CancellationToken cancellationToken);
}

/// <summary>One node's accounts: <c>{DataDirectory}/console-users.json</c>, readable by its owner only, replaced atomically.</summary>
internal sealed class FileConsoleAccountStore(string path) : IConsoleAccountStore, IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private Dictionary<string, ConsoleUsers.Account>? _accounts;

    public string Location => path;

    public void Dispose() => _gate.Dispose();

    public async Task<bool> AnyAsync(CancellationToken cancellationToken) => (await LockedAsync(a => a.Count > 0, save: false, cancellationToken));

    public Task<ConsoleUsers.Account?> FindAsync(string name, CancellationToken cancellationToken)
        => LockedAsync(a => a.GetValueOrDefault(name), save: false, cancellationToken);

    public Task<bool> AddAsync(ConsoleUsers.Account account, CancellationToken cancellationToken)
        => LockedAsync(a => a.TryAdd(account.Name, account), save: true, cancellationToken);

    public Task SaveAsync(ConsoleUsers.Account account, CancellationToken cancellationToken)
        => LockedAsync(a => a[account.Name] = account, save: true, cancellationToken);

    private async Task<T> LockedAsync<T>(Func<Dictionary<string, ConsoleUsers.Account>, T> action, bool save, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            _accounts ??= File.Exists(path)
                ? JsonSerializer.Deserialize<List<ConsoleUsers.Account>>(await File.ReadAllTextAsync(path, cancellationToken))?.ToDictionary(a => a.Name, StringComparer.Ordinal) ?? []
                : new Dictionary<string, ConsoleUsers.Account>(StringComparer.Ordinal);
            var result = action(_accounts);
            if (save)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
                var temporary = path + ".tmp";
                await File.WriteAllTextAsync(temporary, JsonSerializer.Serialize(_accounts.Values.OrderBy(a => a.Name, StringComparer.Ordinal)), cancellationToken);
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }

                File.Move(temporary, path, overwrite: true);
            }

            return result;
        }
        finally
        {
            _gate.Release();
        }
    }
}

/// <summary>Every console node's accounts: one Redis hash (<c>{prefix}accounts</c>), a field per account; HSETNX adds.</summary>
internal sealed class RedisConsoleAccountStore(RedisConnection connection, string prefix) : IConsoleAccountStore
{
    private string Key => prefix + "accounts";

    public string Location => $"Redis {connection.Description}, hash {Key}";

    public async Task<bool> AnyAsync(CancellationToken cancellationToken) => await (await connection.DatabaseAsync()).HashLengthAsync(Key).WaitAsync(cancellationToken) > 0;

    public async Task<ConsoleUsers.Account?> FindAsync(string name, CancellationToken cancellationToken)
    {
        var value = await (await connection.DatabaseAsync()).HashGetAsync(Key, name).WaitAsync(cancellationToken);
        return value.IsNullOrEmpty ? null : JsonSerializer.Deserialize<ConsoleUsers.Account>(value.ToString());
    }

    public async Task<bool> AddAsync(ConsoleUsers.Account account, CancellationToken cancellationToken)
        => await (await connection.DatabaseAsync()).HashSetAsync(Key, account.Name, JsonSerializer.Serialize(account), When.NotExists).WaitAsync(cancellationToken);

    public async Task SaveAsync(ConsoleUsers.Account account, CancellationToken cancellationToken)
        => await (await connection.DatabaseAsync()).HashSetAsync(Key, account.Name, JsonSerializer.Serialize(account)).WaitAsync(cancellationToken);
}
