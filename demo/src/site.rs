//! The demo site, embedded: the bundle builder writes these bytes into the root filesystem and
//! the test suite compares what nginx serves against the same bytes.

/// A file of the site and how nginx (Debian's mime.types) labels it.
#[derive(Clone, Copy, Debug)]
pub struct Asset {
    /// URL path, also the path below the site root.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:literal) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!("../site", $path)),
        }
    };
}

/// The app shell, served for `/` and every client-side route.
pub const INDEX: Asset = asset!("/index.html", "text/html");

pub const ASSETS: &[Asset] = &[
    INDEX,
    asset!("/assets/app.js", "application/javascript"),
    asset!("/assets/app.css", "text/css"),
    asset!("/assets/logo.svg", "image/svg+xml"),
    asset!("/assets/favicon.png", "image/png"),
    asset!("/assets/tools.json", "application/json"),
];

/// Client-side routes (see `site/assets/app.js`): no file behind them, nginx falls back to
/// the app shell.
pub const ROUTES: &[&str] = &[
    "/base64-string-converter",
    "/uuid-generator",
    "/json-prettify",
];

/// Where the site lives inside the container (nginx.conf's `root`).
pub const ROOT_IN_CONTAINER: &str = "/srv/site";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_known_to_the_app() {
        let app = std::str::from_utf8(ASSETS[1].body).unwrap();
        for route in ROUTES {
            assert!(app.contains(&format!("\"{route}\"")), "{route}");
        }
    }

    #[test]
    fn the_shell_references_the_assets() {
        let index = std::str::from_utf8(INDEX.body).unwrap();
        for path in [
            "/assets/app.js",
            "/assets/app.css",
            "/assets/logo.svg",
            "/assets/favicon.png",
        ] {
            assert!(index.contains(path), "{path}");
        }
    }

    #[test]
    fn the_png_is_a_png() {
        let png = ASSETS.iter().find(|a| a.path.ends_with(".png")).unwrap();
        assert!(png.body.starts_with(b"\x89PNG\r\n\x1a\n"));
    }
}
