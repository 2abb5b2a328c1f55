namespace KtZeroTrust.Core.Devices;

/// <summary>
/// Device serials appear in certificate subjects, file names and URIs, so only a conservative
/// alphabet is accepted: letters, digits, '.' and '-' (X.520 PrintableString), 1 to 64 characters, not starting with punctuation.
/// </summary>
public static class DeviceSerial
{
    public const int MaxLength = 64;

    public static bool IsValid(string? serial)
    {
        if (string.IsNullOrEmpty(serial) || serial.Length > MaxLength || !char.IsAsciiLetterOrDigit(serial[0]))
        {
            return false;
        }

        foreach (var c in serial)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('.' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    public static void Validate(string? serial)
    {
        if (!IsValid(serial))
        {
            throw new RegistryException(RegistryException.InvalidInput,
                $"Invalid device serial '{serial}': use 1-{MaxLength} letters, digits, '.' or '-', starting with a letter or digit.");
        }
    }
}
