// The engine tells Wi-Fi from Ethernet by sysfs on Linux; on Apple it sees only names
// (`en0`, `en1`, `awdl0`), so the Network framework, which knows each interface's type, tells it.
#if canImport(Network)
import Foundation
import Network

public enum SystemInterfaces {
    /// The interface kinds `NWPathMonitor` reports right now (it delivers a first path
    /// within milliseconds of starting; `timeout` bounds the wait).
    public static func kinds(timeout: TimeInterval = 1.0) -> [InterfaceOverride] {
        let monitor = NWPathMonitor()
        let queue = DispatchQueue(label: "tandem.interfaces")
        let ready = DispatchSemaphore(value: 0)
        let box = PathBox()
        monitor.pathUpdateHandler = { path in
            if box.set(path) {
                ready.signal()
            }
        }
        monitor.start(queue: queue)
        _ = ready.wait(timeout: .now() + timeout)
        monitor.cancel()
        return (box.get()?.availableInterfaces ?? []).map { interface in
            InterfaceOverride(name: interface.name, kind: kind(of: interface))
        }
    }

    static func kind(of interface: NWInterface) -> InterfaceKind {
        // AWDL and low-latency WLAN report `.other`; name them by their role instead.
        if interface.name.hasPrefix("awdl") || interface.name.hasPrefix("llw") {
            return .peerToPeer
        }
        switch interface.type {
        case .wifi: return .wifi
        case .wiredEthernet: return .wired
        default: return .other
        }
    }
}

/// The first path `NWPathMonitor` delivered, shared between its queue and the caller.
private final class PathBox: @unchecked Sendable {
    private let lock = NSLock()
    private var path: NWPath?

    /// Stores `path` if it is the first; whether it was.
    func set(_ new: NWPath) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard path == nil else { return false }
        path = new
        return true
    }

    func get() -> NWPath? {
        lock.lock()
        defer { lock.unlock() }
        return path
    }
}

extension NetConfig {
    /// This config with the interface kinds the system reports, so that `.infrastructure`
    /// finds Wi-Fi `en0` and `.peerToPeer` finds `awdl0`.
    public func withSystemInterfaceKinds() -> NetConfig {
        var config = self
        config.interfaceKinds = SystemInterfaces.kinds()
        return config
    }
}
#endif
