//! The report's font: a face with Chinese glyphs found on the machine, never shipped with
//! fieldsync. `--font FILE` (or `FIELDSYNC_REPORT_FONT`) names one; otherwise the well-known
//! places of the common CJK fonts are tried in order. A collection (`.ttc`) is read face by face,
//! the Simplified Chinese face preferred.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use skrifa::instance::{LocationRef, Size};
use skrifa::raw::FileRef;
use skrifa::string::StringId;
use skrifa::{FontRef, MetadataProvider};

use crate::{ClientError, ClientResult};

/// Where the common CJK fonts live: Debian's and Fedora's packages, macOS, Windows.
pub const KNOWN_FONTS: &[&str] = &[
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-sans-cjk-vf-fonts/NotoSansCJK-VF.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Medium.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:\\Windows\\Fonts\\msyh.ttc",
    "C:\\Windows\\Fonts\\simsun.ttc",
];

/// Characters every face must have: the report's own words.
const REQUIRED: &str = "现场检查笔录执法证核验结论照片时间线发现问题通过未0123456789ABCDEFabcdef";

/// A face with Chinese glyphs, its bytes, and its advance widths for laying lines out.
#[derive(Clone)]
pub struct ReportFont {
    pub path: PathBuf,
    /// The face's index in its collection (0 for a single font).
    pub index: u32,
    /// The face's family name, as it names itself.
    pub family: String,
    pub data: Arc<Vec<u8>>,
}

impl std::fmt::Debug for ReportFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} #{} ({})", self.path.display(), self.index, self.family)
    }
}

impl ReportFont {
    /// The font at `path` when given, else the first well-known one on this machine.
    pub fn find(path: Option<&Path>) -> ClientResult<ReportFont> {
        if let Some(path) = path {
            return ReportFont::load(path);
        }
        let tried: Vec<PathBuf> = KNOWN_FONTS.iter().map(PathBuf::from).collect();
        for candidate in &tried {
            if candidate.is_file()
                && let Ok(font) = ReportFont::load(candidate)
            {
                return Ok(font);
            }
        }
        Err(ClientError::FontNotFound { tried })
    }

    /// The face of the file at `path` that has the report's glyphs, the Simplified Chinese one
    /// of a collection preferred.
    pub fn load(path: &Path) -> ClientResult<ReportFont> {
        let unusable = |detail: String| ClientError::FontUnusable { path: path.to_path_buf(), detail };
        let data = std::fs::read(path).map_err(|e| unusable(e.to_string()))?;
        let faces: Vec<(u32, FontRef<'_>)> = match FileRef::new(&data) {
            Ok(FileRef::Font(font)) => vec![(0, font)],
            Ok(FileRef::Collection(collection)) => {
                (0..collection.len()).filter_map(|i| collection.get(i).ok().map(|font| (i, font))).collect()
            }
            Err(e) => return Err(unusable(format!("not a font file: {e}"))),
        };
        let usable: Vec<(u32, String)> = faces
            .iter()
            .filter(|(_, font)| REQUIRED.chars().all(|c| font.charmap().map(c).is_some()))
            .map(|(index, font)| (*index, family(font)))
            .collect();
        let chosen = usable
            .iter()
            .find(|(_, family)| family.ends_with(" SC") || family.contains("简"))
            .or_else(|| usable.first())
            .cloned();
        let Some((index, family)) = chosen else {
            return Err(unusable("no face of it has Chinese glyphs".to_string()));
        };
        Ok(ReportFont { path: path.to_path_buf(), index, family, data: Arc::new(data) })
    }

    /// The face, to measure with.
    pub fn face(&self) -> FontRef<'_> {
        FontRef::from_index(&self.data, self.index).expect("the face was read when the font was loaded")
    }
}

fn family(font: &FontRef<'_>) -> String {
    font.localized_strings(StringId::FAMILY_NAME).english_or_first().map(|s| s.to_string()).unwrap_or_default()
}

/// Advance widths of one face, in ems.
pub struct Measure<'a> {
    charmap: skrifa::charmap::Charmap<'a>,
    metrics: skrifa::metrics::GlyphMetrics<'a>,
    units_per_em: f32,
}

impl<'a> Measure<'a> {
    pub fn new(font: &'a ReportFont) -> Measure<'a> {
        let face = font.face();
        let units_per_em = face.metrics(Size::unscaled(), LocationRef::default()).units_per_em.max(1) as f32;
        Measure {
            charmap: face.charmap(),
            metrics: face.glyph_metrics(Size::unscaled(), LocationRef::default()),
            units_per_em,
        }
    }

    /// The advance of `c` in ems (a character the face lacks counts one em: its `.notdef`).
    pub fn advance(&self, c: char) -> f32 {
        let glyph = self.charmap.map(c).unwrap_or_default();
        self.metrics.advance_width(glyph).map_or(1.0, |w| w / self.units_per_em)
    }

    /// The width of `text` at `size` points.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.advance(c)).sum::<f32>() * size
    }

    /// `text` broken into lines no wider than `width` points at `size`: at a newline always, after
    /// a space or a Chinese character when it can, inside a word (a hash) when it must.
    pub fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let mut line = String::new();
            let mut line_width = 0.0;
            // Where the line may break: the byte offset after the last break opportunity.
            let mut last_break: Option<usize> = None;
            for c in paragraph.chars() {
                let advance = self.advance(c) * size;
                if line_width + advance > width && !line.is_empty() {
                    let cut = last_break.filter(|at| *at > 0 && *at < line.len()).unwrap_or(line.len());
                    let rest = line.split_off(cut);
                    lines.push(line.trim_end().to_string());
                    line = rest.trim_start().to_string();
                    line_width = self.width(&line, size);
                    last_break = None;
                }
                line.push(c);
                line_width += advance;
                if c == ' ' || is_wide(c) || "，。；：、）》,;)".contains(c) {
                    last_break = Some(line.len());
                }
            }
            lines.push(line.trim_end().to_string());
        }
        lines
    }
}

/// Whether a line may break after `c`: Chinese, Japanese and Korean characters and full-width
/// punctuation.
fn is_wide(c: char) -> bool {
    matches!(c as u32, 0x2E80..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs a CJK font on the machine (`.ci/test` installs fonts-noto-cjk).
    #[test]
    fn lines_break_within_their_width_and_lose_nothing() {
        let font = ReportFont::find(None).expect("a CJK font on this machine (fonts-noto-cjk)");
        if font.path.ends_with("NotoSansCJK-Regular.ttc") {
            assert_eq!(font.family, "Noto Sans CJK SC", "the collection's Simplified Chinese face");
        }
        let measure = Measure::new(&font);
        let text = format!("{}\n{}", "核验通过：证据包的 12 项检查全部成立。".repeat(5), "ab".repeat(64));
        let lines = measure.wrap(&text, 10.0, 120.0);
        assert!(lines.len() > 6, "{lines:?}");
        for line in &lines {
            assert!(measure.width(line, 10.0) <= 120.0 + 0.01, "{line:?}");
        }
        let kept: String = lines.concat().split_whitespace().collect();
        assert_eq!(kept, text.split_whitespace().collect::<String>());
        assert!(lines.iter().any(|l| l.starts_with("ab")), "the newline breaks the line: {lines:?}");
    }

    #[test]
    fn a_file_that_is_not_a_chinese_font_is_refused() {
        for path in ["/nonexistent/font.ttc", "Cargo.toml", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"] {
            let error = ReportFont::load(Path::new(path)).unwrap_err();
            assert_eq!(error.code(), "font_unusable", "{path}: {error}");
        }
    }
}
