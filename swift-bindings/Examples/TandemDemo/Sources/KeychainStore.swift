import Foundation
import Security

struct KeychainError: Error, CustomStringConvertible {
    let status: OSStatus
    var description: String {
        let text = SecCopyErrorMessageString(status, nil) as String? ?? "unknown error"
        return "Keychain: \(text) (\(status))"
    }
}

/// Generic-password items of this app. The identity holds a secret key, so it belongs in the
/// Keychain rather than in a file; the trust store is public keys only but lives beside it.
///
/// On macOS every query names the data protection keychain (`kSecUseDataProtectionKeychain`),
/// the iOS-style keychain where `kSecAttrAccessible…ThisDeviceOnly` means what it says; without
/// it macOS uses the legacy file-based keychain, which ignores accessibility classes and may ask
/// the user for the login password. It needs a signed app with an application identifier (Xcode
/// signing with a team does that); an unsigned build gets errSecMissingEntitlement (-34018).
/// Apple: https://developer.apple.com/documentation/security/ksecusedataprotectionkeychain and
/// TN3137 "On Mac keychain APIs and implementations":
/// https://developer.apple.com/documentation/technotes/tn3137-on-mac-keychains
struct KeychainStore {
    let service: String

    func data(for account: String) -> Data? {
        var query = baseQuery(account)
        query[kSecReturnData as String] = true
        query[kSecMatchLimit as String] = kSecMatchLimitOne
        var result: CFTypeRef?
        guard SecItemCopyMatching(query as CFDictionary, &result) == errSecSuccess else {
            return nil
        }
        return result as? Data
    }

    func set(_ data: Data, for account: String) throws {
        var status = SecItemUpdate(
            baseQuery(account) as CFDictionary,
            [kSecValueData as String: data] as CFDictionary)
        if status == errSecItemNotFound {
            var item = baseQuery(account)
            item[kSecValueData as String] = data
            // This device only: a backup restored onto another device must not become this
            // one in the eyes of its paired peers.
            item[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
            status = SecItemAdd(item as CFDictionary, nil)
        }
        guard status == errSecSuccess else { throw KeychainError(status: status) }
    }

    private func baseQuery(_ account: String) -> [String: Any] {
        var query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
        ]
        #if os(macOS)
        // Every query, not only the add: a search without it looks in the file-based keychain.
        query[kSecUseDataProtectionKeychain as String] = true
        #endif
        return query
    }
}
