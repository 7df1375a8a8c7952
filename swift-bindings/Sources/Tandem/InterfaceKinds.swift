// The engine tells Wi-Fi from Ethernet by sysfs on Linux; on Apple it sees only names
// (`en0`, `en1`, `awdl0`), so the Network framework, which knows each interface's type, tells it.
//
// NWPathMonitor delivers its first path on its own queue shortly after start(queue:); nothing here
// waits for it on the caller's thread (the old blocking version stalled the main thread for up
// to its timeout).
// https://developer.apple.com/documentation/network/nwpathmonitor
// https://developer.apple.com/documentation/network/nwpath/availableinterfaces
// https://developer.apple.com/documentation/network/nwinterface/interfacetype
#if canImport(Network)
import Foundation
import Network

public enum SystemInterfaces {
    /// The interface kinds `NWPathMonitor` reports right now. Suspends until the monitor's first
    /// path arrives (milliseconds) or `timeout` passes (then: none, and the engine falls back to
    /// names); never blocks a thread.
    public static func kinds(timeout: TimeInterval = 1.0) async -> [InterfaceOverride] {
        await withCheckedContinuation { continuation in
            let monitor = NWPathMonitor()
            // Both handlers below run on this serial queue, so `once` needs no lock.
            let queue = DispatchQueue(label: "tandem.interfaces", qos: .userInitiated)
            let once = Once(continuation)
            monitor.pathUpdateHandler = { path in
                once.resume(path.availableInterfaces.map { interface in
                    InterfaceOverride(name: interface.name, kind: SystemInterfaces.kind(of: interface))
                })
                // The handler holds the monitor; dropping it breaks that cycle.
                monitor.pathUpdateHandler = nil
                monitor.cancel()
            }
            queue.asyncAfter(deadline: .now() + timeout) {
                once.resume([])
                monitor.pathUpdateHandler = nil
                monitor.cancel()
            }
            monitor.start(queue: queue)
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

/// Resumes a continuation once; later calls do nothing. Used from one serial queue only.
private final class Once: @unchecked Sendable {
    private var continuation: CheckedContinuation<[InterfaceOverride], Never>?

    init(_ continuation: CheckedContinuation<[InterfaceOverride], Never>) {
        self.continuation = continuation
    }

    func resume(_ value: [InterfaceOverride]) {
        continuation?.resume(returning: value)
        continuation = nil
    }
}

extension NetConfig {
    /// This config with the interface kinds the system reports, so that `.infrastructure`
    /// finds Wi-Fi `en0` and `.peerToPeer` finds `awdl0`. Asks `NWPathMonitor` without
    /// blocking; call it from a task.
    public func withSystemInterfaceKinds() async -> NetConfig {
        var config = self
        config.interfaceKinds = await SystemInterfaces.kinds()
        return config
    }
}
#endif
