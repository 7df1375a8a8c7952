import AVFoundation
import SwiftUI

// SwiftUI has no view for a display layer; these host one and keep it the view's size.

#if os(iOS)
import UIKit

struct VideoLayerView: UIViewRepresentable {
    let layer: AVSampleBufferDisplayLayer

    func makeUIView(context: Context) -> LayerHostView { LayerHostView(hosting: layer) }
    func updateUIView(_ view: LayerHostView, context: Context) {}
}

final class LayerHostView: UIView {
    private let hosted: CALayer

    init(hosting hosted: CALayer) {
        self.hosted = hosted
        super.init(frame: .zero)
        layer.addSublayer(hosted)
    }

    required init?(coder: NSCoder) {
        fatalError("LayerHostView is made in code only")
    }

    override func layoutSubviews() {
        super.layoutSubviews()
        CATransaction.begin()
        CATransaction.setDisableActions(true)
        hosted.frame = bounds
        CATransaction.commit()
    }
}
#else
import AppKit

struct VideoLayerView: NSViewRepresentable {
    let layer: AVSampleBufferDisplayLayer

    func makeNSView(context: Context) -> LayerHostView { LayerHostView(hosting: layer) }
    func updateNSView(_ view: LayerHostView, context: Context) {}
}

final class LayerHostView: NSView {
    private let hosted: CALayer

    init(hosting hosted: CALayer) {
        self.hosted = hosted
        super.init(frame: .zero)
        wantsLayer = true
        layer?.addSublayer(hosted)
    }

    required init?(coder: NSCoder) {
        fatalError("LayerHostView is made in code only")
    }

    override func layout() {
        super.layout()
        CATransaction.begin()
        CATransaction.setDisableActions(true)
        hosted.frame = bounds
        CATransaction.commit()
    }
}
#endif
