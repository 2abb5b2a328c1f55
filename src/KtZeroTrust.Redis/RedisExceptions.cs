namespace KtZeroTrust.Redis;

/// <summary>Base of every error the client raises.</summary>
public class RedisException : Exception
{
    public RedisException()
    {
    }

    public RedisException(string message)
        : base(message)
    {
    }

    public RedisException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The server answered with an error; <see cref="Exception.Message"/> carries the server's text.</summary>
public sealed class RedisServerException : RedisException
{
    public RedisServerException()
    {
    }

    public RedisServerException(string message)
        : base(message)
    {
    }

    public RedisServerException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    public RedisServerException(string serverText, string command, string? context = null)
        : base(context is null ? $"{serverText} (command {command})" : $"{context}: {serverText}")
    {
        ServerText = serverText;
        var space = serverText.IndexOf(' ', StringComparison.Ordinal);
        ErrorCode = space > 0 ? serverText[..space] : serverText;
    }

    /// <summary>The error as the server sent it, e.g. <c>WRONGPASS invalid username-password pair</c>.</summary>
    public string ServerText { get; } = "";

    /// <summary>The error's first word: <c>ERR</c>, <c>WRONGTYPE</c>, <c>NOAUTH</c>, <c>WRONGPASS</c>, <c>NOSCRIPT</c>...</summary>
    public string ErrorCode { get; } = "";
}

/// <summary>The connection could not be made, or was lost; the message says where and why.</summary>
public sealed class RedisConnectionException : RedisException
{
    public RedisConnectionException()
    {
    }

    public RedisConnectionException(string message)
        : base(message)
    {
    }

    public RedisConnectionException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    public RedisConnectionException(string endpoint, string reason, Exception? innerException)
        : base($"Redis {endpoint}: {reason}", innerException)
    {
        Endpoint = endpoint;
    }

    public string Endpoint { get; } = "";
}

/// <summary>No reply within the command timeout. The command may still have run on the server.</summary>
public sealed class RedisTimeoutException : RedisException
{
    public RedisTimeoutException()
    {
    }

    public RedisTimeoutException(string message)
        : base(message)
    {
    }

    public RedisTimeoutException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The server sent something that is not valid RESP; the connection is dropped and re-established.</summary>
public sealed class RedisProtocolException : RedisException
{
    public RedisProtocolException()
    {
    }

    public RedisProtocolException(string message)
        : base(message)
    {
    }

    public RedisProtocolException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
