//! Which X display `--source screen` may read, decided from the environment before any
//! connection is made: a Wayland session is refused with the way that does work, and no
//! display at all is an error naming how to give one.
//!
//! Why refuse Wayland rather than try: a Wayland compositor gives other programs no way to
//! read the screen except through the xdg-desktop-portal ScreenCast interface (which asks the
//! user and hands out a PipeWire stream), and Tandem has no portal or PipeWire client. The
//! `DISPLAY` such a session sets points at XWayland, whose root window holds only the X
//! clients' windows: capturing it "works" and gives a mostly black picture, which is worse
//! than an error.

/// The environment values the decision reads (see [`SessionEnv::from_env`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionEnv {
    /// `XDG_SESSION_TYPE` (`x11`, `wayland`, `tty`, …), set by the login manager.
    pub xdg_session_type: Option<String>,
    /// `WAYLAND_DISPLAY`, set inside a Wayland session.
    pub wayland_display: Option<String>,
    /// `DISPLAY`, the X display X clients connect to.
    pub display: Option<String>,
}

impl SessionEnv {
    /// This process's environment (unset and empty variables both count as absent).
    pub fn from_env() -> SessionEnv {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        SessionEnv {
            xdg_session_type: var("XDG_SESSION_TYPE"),
            wayland_display: var("WAYLAND_DISPLAY"),
            display: var("DISPLAY"),
        }
    }

    /// Whether this is a Wayland session. `XDG_SESSION_TYPE` decides when it says `x11` or
    /// `wayland` (an X session may run a nested Wayland compositor, which sets
    /// `WAYLAND_DISPLAY` without making the X screen any less real); otherwise (unset, `tty`
    /// over ssh, `unspecified`) a set `WAYLAND_DISPLAY` does.
    fn is_wayland(&self) -> bool {
        match self
            .xdg_session_type
            .as_deref()
            .map(str::to_ascii_lowercase)
        {
            Some(t) if t == "wayland" => true,
            Some(t) if t == "x11" => false,
            _ => self
                .wayland_display
                .as_deref()
                .is_some_and(|w| !w.is_empty()),
        }
    }
}

/// Text shared by the refusals: the route that works on Wayland. The example pipelines are
/// not verified by Tandem's tests (they need a Wayland session and a portal).
pub const WAYLAND_ROUTE: &str = "on Wayland, capture with a tool that speaks the portal and \
     pipe Y4M into `tandem-send --source -`, for example (not verified by Tandem's tests): \
     `gst-launch-1.0 -q pipewiresrc path=NODE ! videoconvert ! video/x-raw,format=I420 ! \
     y4menc ! fdsink fd=1 | tandem-send --source - …` (the portal's ScreenCast gives the \
     PipeWire node), or `wf-recorder -c rawvideo -m yuv4mpegpipe -x yuv420p -f /dev/stdout \
     | tandem-send --source - …` on wlroots compositors";

/// The X display to capture: `named` (from `--source screen:DISPLAY`) when given, which is
/// always honoured (the user asked for that server, say an Xvfb, even from a Wayland
/// session); otherwise `DISPLAY`, unless the session is Wayland. The error is the message to
/// print.
pub fn choose_display(env: &SessionEnv, named: Option<&str>) -> Result<String, String> {
    if let Some(name) = named.filter(|n| !n.is_empty()) {
        return Ok(name.to_owned());
    }
    if env.is_wayland() {
        let xwayland = match &env.display {
            Some(d) => format!(
                " DISPLAY={d} is XWayland, whose root window shows only X clients' windows, \
                 not the desktop."
            ),
            None => String::new(),
        };
        return Err(format!(
            "screen capture of a Wayland session is not supported: it needs the \
             xdg-desktop-portal ScreenCast interface and PipeWire, which Tandem does not \
             have.{xwayland} Instead, {WAYLAND_ROUTE}. (To capture an X server anyway, name \
             it: --source screen:DISPLAY.)"
        ));
    }
    match &env.display {
        Some(d) => Ok(d.clone()),
        None => Err(
            "no X display to capture: DISPLAY is not set. Run tandem-send inside an \
             X session, or name the display: --source screen::0 (or screen::99 for an \
             `Xvfb :99`)."
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(session: Option<&str>, wayland: Option<&str>, display: Option<&str>) -> SessionEnv {
        SessionEnv {
            xdg_session_type: session.map(str::to_owned),
            wayland_display: wayland.map(str::to_owned),
            display: display.map(str::to_owned),
        }
    }

    #[test]
    fn an_x11_session_captures_its_display() {
        let e = env(Some("x11"), None, Some(":0"));
        assert_eq!(choose_display(&e, None), Ok(":0".to_owned()));
        // A nested Wayland compositor inside X sets WAYLAND_DISPLAY; the session is still X.
        let nested = env(Some("x11"), Some("wayland-1"), Some(":0"));
        assert_eq!(choose_display(&nested, None), Ok(":0".to_owned()));
        // ssh -X: no session type of its own beyond tty, a forwarded display.
        let ssh = env(Some("tty"), None, Some("localhost:10.0"));
        assert_eq!(choose_display(&ssh, None), Ok("localhost:10.0".to_owned()));
    }

    #[test]
    fn a_wayland_session_is_refused_with_the_stdin_route() {
        for e in [
            env(Some("wayland"), Some("wayland-0"), Some(":0")),
            env(Some("Wayland"), None, None),
            env(None, Some("wayland-0"), Some(":1")),
            env(Some("tty"), Some("wayland-0"), Some(":1")),
        ] {
            let msg = choose_display(&e, None).expect_err("refused");
            assert!(msg.contains("Wayland session is not supported"), "{msg}");
            assert!(msg.contains("xdg-desktop-portal ScreenCast"), "{msg}");
            assert!(msg.contains("--source -"), "{msg}");
            assert!(msg.contains("not verified"), "{msg}");
            assert_eq!(
                msg.contains("XWayland"),
                e.display.is_some(),
                "XWayland is named when DISPLAY is set: {msg}"
            );
        }
    }

    #[test]
    fn a_named_display_is_always_honoured() {
        let wayland = env(Some("wayland"), Some("wayland-0"), Some(":0"));
        assert_eq!(choose_display(&wayland, Some(":99")), Ok(":99".to_owned()));
        let none = env(None, None, None);
        assert_eq!(choose_display(&none, Some(":5.0")), Ok(":5.0".to_owned()));
        // An empty name (`--source screen:`) means "the default".
        assert_eq!(
            choose_display(&env(None, None, Some(":2")), Some("")),
            Ok(":2".to_owned())
        );
    }

    #[test]
    fn no_display_at_all_says_how_to_name_one() {
        for e in [env(None, None, None), env(Some("x11"), None, None)] {
            let msg = choose_display(&e, None).expect_err("no display");
            assert!(msg.contains("DISPLAY is not set"), "{msg}");
            assert!(msg.contains("--source screen::0"), "{msg}");
        }
    }
}
