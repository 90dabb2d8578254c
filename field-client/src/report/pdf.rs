//! The report as a PDF: A4 pages laid out here (lines broken by the font's own advance
//! widths), drawn with `krilla`, which embeds the subset of the machine's CJK font the report
//! uses and maps every glyph back to its text, so that the PDF's text can be read back
//! (searched, copied, `pdftotext`).

use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect, Size, Transform};
use krilla::image::Image;
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, TextDirection};

use super::font::{Measure, ReportFont};
use super::{Block, Photo, Report};
use crate::{ClientError, ClientResult};

const PAGE_WIDTH: f32 = 595.28;
const PAGE_HEIGHT: f32 = 841.89;
const LEFT: f32 = 54.0;
const RIGHT: f32 = PAGE_WIDTH - 54.0;
const TOP: f32 = 56.0;
const BOTTOM: f32 = PAGE_HEIGHT - 64.0;
const WIDTH: f32 = RIGHT - LEFT;
/// Space inside a table cell.
const PAD: f32 = 4.0;
/// Line height, in font sizes.
const LEADING: f32 = 1.5;

const BODY: f32 = 10.0;
const TABLE: f32 = 8.5;
const SMALL: f32 = 7.0;

type Color = (u8, u8, u8);
const BLACK: Color = (17, 17, 17);
const GREY: Color = (90, 90, 90);
const RULE: Color = (150, 150, 150);
const SHADE: Color = (236, 236, 236);
const GREEN: Color = (0, 100, 68);
const RED: Color = (170, 0, 0);

/// What a page holds, in page coordinates (points from the top left; text at its baseline).
enum Op {
    Text { x: f32, y: f32, size: f32, color: Color, text: String },
    Fill { rect: (f32, f32, f32, f32), color: Color },
    Frame { rect: (f32, f32, f32, f32), color: Color, width: f32 },
    Image { rect: (f32, f32, f32, f32), photo: usize },
}

struct Layout<'a> {
    measure: Measure<'a>,
    pages: Vec<Vec<Op>>,
    /// The top of the free space on the last page.
    y: f32,
}

impl Layout<'_> {
    fn ops(&mut self) -> &mut Vec<Op> {
        self.pages.last_mut().expect("a page")
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = TOP;
    }

    /// Starts a new page unless `height` fits on this one.
    fn room(&mut self, height: f32) {
        if self.y + height > BOTTOM && self.y > TOP {
            self.new_page();
        }
    }

    fn text(&mut self, x: f32, top: f32, size: f32, color: Color, text: &str) {
        if !text.is_empty() {
            // The baseline sits so that the glyphs are centred in the line's height.
            let y = top + size * (LEADING / 2.0 + 0.35);
            self.ops().push(Op::Text { x, y, size, color, text: text.to_string() });
        }
    }

    /// Lines of text across the page, each on the page where it fits.
    fn lines(&mut self, lines: &[String], x: f32, size: f32, color: Color) {
        for line in lines {
            self.room(size * LEADING);
            let top = self.y;
            self.text(x, top, size, color, line);
            self.y += size * LEADING;
        }
    }

    fn paragraph(&mut self, text: &str, size: f32, color: Color) {
        let lines = self.measure.wrap(text, size, WIDTH);
        self.lines(&lines, LEFT, size, color);
        self.y += size * 0.5;
    }

    fn centred(&mut self, text: &str, size: f32, color: Color) {
        for line in self.measure.wrap(text, size, WIDTH) {
            self.room(size * LEADING);
            let x = LEFT + (WIDTH - self.measure.width(&line, size)).max(0.0) / 2.0;
            let top = self.y;
            self.text(x, top, size, color, &line);
            self.y += size * LEADING;
        }
    }

    /// A table: a shaded header row (repeated on each page the table runs onto) when it has
    /// one, and rows whose cells are broken into lines; a row taller than a page runs on.
    fn table(&mut self, shares: &[f32], header: Option<&[String]>, rows: &[Vec<String>], shade_first: bool) {
        let widths: Vec<f32> = shares.iter().map(|s| s * WIDTH).collect();
        let wrap = |layout: &Layout<'_>, row: &[String]| -> Vec<Vec<String>> {
            row.iter().zip(&widths).map(|(cell, w)| layout.measure.wrap(cell, TABLE, w - 2.0 * PAD)).collect()
        };
        let line = TABLE * LEADING;
        let header_lines = header.map(|h| wrap(self, h));
        let header_height = header_lines.as_ref().map_or(0.0, |h| row_height(h));
        // Keep the header with the first row's first line.
        self.room(header_height + line + 2.0 * PAD);
        if let Some(lines) = &header_lines {
            self.row(&widths, lines, true, false);
        }
        for row in rows {
            let mut cells = wrap(self, row);
            loop {
                let tall = cells.iter().map(Vec::len).max().unwrap_or(0).max(1);
                let fits = ((BOTTOM - self.y - 2.0 * PAD) / line).floor().max(0.0) as usize;
                if fits >= tall {
                    self.row(&widths, &cells, false, shade_first);
                    break;
                }
                // A row that fits on a fresh page moves there whole, as does one of which no line
                // fits here; a row taller than a page runs on.
                let fresh = ((BOTTOM - TOP - header_height - 2.0 * PAD) / line).floor() as usize;
                let at_top = self.y <= TOP + header_height + 0.5;
                if !at_top && (tall <= fresh || fits == 0) {
                    self.new_page();
                    if let Some(lines) = &header_lines {
                        self.row(&widths, lines, true, false);
                    }
                    continue;
                }
                let fits = fits.max(1);
                let rest: Vec<Vec<String>> = cells.iter_mut().map(|c| c.split_off(fits.min(c.len()))).collect();
                self.row(&widths, &cells, false, shade_first);
                cells = rest;
                self.new_page();
                if let Some(lines) = &header_lines {
                    self.row(&widths, lines, true, false);
                }
            }
        }
        self.y += BODY * 0.6;
    }

    fn row(&mut self, widths: &[f32], cells: &[Vec<String>], header: bool, shade_first: bool) {
        let height = row_height(cells);
        let top = self.y;
        let mut x = LEFT;
        for (i, (lines, width)) in cells.iter().zip(widths).enumerate() {
            let rect = (x, top, *width, height);
            if header || (shade_first && i == 0) {
                self.ops().push(Op::Fill { rect, color: SHADE });
            }
            self.ops().push(Op::Frame { rect, color: RULE, width: 0.5 });
            for (n, text) in lines.iter().enumerate() {
                self.text(x + PAD, top + PAD + n as f32 * TABLE * LEADING, TABLE, BLACK, text);
            }
            x += width;
        }
        self.y += height;
    }

    fn photos(&mut self, photos: &[Photo], first: usize) {
        const COLUMNS: usize = 3;
        const GAP: f32 = 12.0;
        let cell = (WIDTH - GAP * (COLUMNS - 1) as f32) / COLUMNS as f32;
        let frame = cell * 0.75;
        for (r, row) in photos.chunks(COLUMNS).enumerate() {
            let texts: Vec<Vec<(f32, Color, String)>> = row
                .iter()
                .map(|photo| {
                    let mut lines = Vec::new();
                    for line in self.measure.wrap(&photo.caption, TABLE, cell) {
                        lines.push((TABLE, BLACK, line));
                    }
                    for line in self.measure.wrap(&format!("SHA-256 {}", photo.sha256), SMALL, cell) {
                        lines.push((SMALL, GREY, line));
                    }
                    for line in self.measure.wrap(&photo.note, SMALL, cell) {
                        lines.push((SMALL, if photo.thumbnail.is_some() { GREY } else { RED }, line));
                    }
                    lines
                })
                .collect();
            let text_height =
                texts.iter().map(|t| t.iter().map(|(size, _, _)| size * LEADING).sum::<f32>()).fold(0.0, f32::max);
            self.room(frame + 4.0 + text_height);
            let top = self.y;
            for (c, (photo, lines)) in row.iter().zip(&texts).enumerate() {
                let x = LEFT + c as f32 * (cell + GAP);
                self.ops().push(Op::Frame { rect: (x, top, cell, frame), color: RULE, width: 0.5 });
                if let Some(thumbnail) = &photo.thumbnail {
                    let scale = (cell / thumbnail.width as f32).min(frame / thumbnail.height as f32);
                    let (w, h) = (thumbnail.width as f32 * scale, thumbnail.height as f32 * scale);
                    let rect = (x + (cell - w) / 2.0, top + (frame - h) / 2.0, w, h);
                    self.ops().push(Op::Image { rect, photo: first + r * COLUMNS + c });
                } else {
                    let note = "（照片未显示）";
                    let w = self.measure.width(note, TABLE);
                    self.text(x + (cell - w) / 2.0, top + frame / 2.0 - TABLE, TABLE, GREY, note);
                }
                let mut y = top + frame + 4.0;
                for (size, color, line) in lines {
                    self.text(x, y, *size, *color, line);
                    y += size * LEADING;
                }
            }
            self.y = top + frame + 4.0 + text_height + GAP;
        }
    }
}

fn row_height(cells: &[Vec<String>]) -> f32 {
    cells.iter().map(Vec::len).max().unwrap_or(0).max(1) as f32 * TABLE * LEADING + 2.0 * PAD
}

/// Lays the report out into pages, with the photos it shows in the order their ops name them.
fn layout<'a>(report: &'a Report, font: &ReportFont) -> (Vec<Vec<Op>>, Vec<&'a Photo>) {
    let mut layout = Layout { measure: Measure::new(font), pages: vec![Vec::new()], y: TOP };
    let mut shown: Vec<&Photo> = Vec::new();
    layout.centred(&report.title, 18.0, BLACK);
    layout.y += 4.0;
    for line in &report.subtitle {
        layout.centred(line, SMALL + 0.5, GREY);
    }
    layout.y += 8.0;
    for block in &report.blocks {
        match block {
            Block::Heading(text) => {
                layout.y += 8.0;
                // A heading stays with what follows it.
                layout.room(13.0 * LEADING + 4.0 * BODY * LEADING);
                layout.paragraph(text, 13.0, BLACK);
            }
            Block::Paragraph(text) => layout.paragraph(text, BODY, BLACK),
            Block::Finding(text) => layout.paragraph(text, 11.0, RED),
            Block::Verdict { holds, text } => {
                let color = if *holds { GREEN } else { RED };
                let lines = layout.measure.wrap(text, 12.0, WIDTH - 16.0);
                let height = lines.len() as f32 * 12.0 * LEADING + 12.0;
                layout.room(height);
                let top = layout.y;
                layout.ops().push(Op::Frame { rect: (LEFT, top, WIDTH, height), color, width: 1.5 });
                layout.y += 6.0;
                layout.lines(&lines, LEFT + 8.0, 12.0, color);
                layout.y = top + height + BODY * 0.6;
            }
            Block::Pairs(pairs) => {
                let rows: Vec<Vec<String>> = pairs.iter().map(|(l, v)| vec![l.clone(), v.clone()]).collect();
                layout.table(&[0.24, 0.76], None, &rows, true);
            }
            Block::Table { columns, rows } => {
                let shares: Vec<f32> = columns.iter().map(|(_, s)| *s).collect();
                let header: Vec<String> = columns.iter().map(|(t, _)| t.clone()).collect();
                layout.table(&shares, Some(&header), rows, false);
            }
            Block::Photos(photos) => {
                layout.photos(photos, shown.len());
                shown.extend(photos.iter());
            }
        }
    }
    (layout.pages, shown)
}

fn rect_path(rect: (f32, f32, f32, f32)) -> Option<krilla::geom::Path> {
    let mut builder = PathBuilder::new();
    builder.push_rect(Rect::from_xywh(rect.0, rect.1, rect.2, rect.3)?);
    builder.finish()
}

fn fill(color: Color) -> Fill {
    Fill { paint: rgb::Color::new(color.0, color.1, color.2).into(), opacity: NormalizedF32::ONE, ..Fill::default() }
}

/// The PDF's bytes.
pub fn render(report: &Report, font: &ReportFont) -> ClientResult<Vec<u8>> {
    let pdf_font = Font::new(font.data.clone().into(), font.index).ok_or_else(|| ClientError::FontUnusable {
        path: font.path.clone(),
        detail: "the PDF writer cannot read this face".into(),
    })?;
    let (pages, photos) = layout(report, font);
    let images: Vec<Option<Image>> = photos
        .iter()
        .map(|photo| photo.thumbnail.as_ref().map(|t| Image::from_rgba8(t.rgba.clone(), t.width, t.height)))
        .collect();
    let mut document = Document::new();
    document.set_metadata(
        Metadata::new().title(report.title.clone()).language("zh-CN".into()).creator("fieldsync verify".into()),
    );
    let count = pages.len();
    for (number, ops) in pages.iter().enumerate() {
        let settings = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT).expect("A4 is a page size");
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        let footer = format!("{}　第 {} 页，共 {count} 页", report.footer, number + 1);
        let footer_ops = [Op::Text { x: LEFT, y: PAGE_HEIGHT - 34.0, size: SMALL + 0.5, color: GREY, text: footer }];
        for op in ops.iter().chain(&footer_ops) {
            match op {
                Op::Text { x, y, size, color, text } => {
                    surface.set_stroke(None);
                    surface.set_fill(Some(fill(*color)));
                    surface.draw_text(
                        Point::from_xy(*x, *y),
                        pdf_font.clone(),
                        *size,
                        text,
                        false,
                        TextDirection::Auto,
                    );
                }
                Op::Fill { rect, color } => {
                    if let Some(path) = rect_path(*rect) {
                        surface.set_stroke(None);
                        surface.set_fill(Some(fill(*color)));
                        surface.draw_path(&path);
                    }
                }
                Op::Frame { rect, color, width } => {
                    if let Some(path) = rect_path(*rect) {
                        surface.set_fill(None);
                        surface.set_stroke(Some(Stroke {
                            paint: rgb::Color::new(color.0, color.1, color.2).into(),
                            width: *width,
                            ..Stroke::default()
                        }));
                        surface.draw_path(&path);
                    }
                }
                Op::Image { rect, photo } => {
                    if let (Some(Some(image)), Some(size)) = (images.get(*photo), Size::from_wh(rect.2, rect.3)) {
                        surface.push_transform(&Transform::from_translate(rect.0, rect.1));
                        surface.draw_image(image.clone(), size);
                        surface.pop();
                    }
                }
            }
        }
        surface.finish();
        page.finish();
    }
    document.finish().map_err(|e| ClientError::ReportFailed { detail: format!("{e:?}") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Thumbnail;

    /// Needs a CJK font on the machine (`.ci/test` installs fonts-noto-cjk).
    #[test]
    fn long_tables_run_over_pages_and_nothing_falls_off_a_page() {
        let font = ReportFont::find(None).expect("a CJK font on this machine (fonts-noto-cjk)");
        let long = "一段很长的说明，".repeat(1500);
        let rows: Vec<Vec<String>> = (0..120)
            .map(|i| vec![format!("项目 {i}"), "成立".into(), if i == 60 { long.clone() } else { "说明".into() }])
            .collect();
        let thumbnail = Thumbnail { width: 4, height: 2, rgba: vec![128; 32] };
        let photo = Photo {
            sha256: "ab".repeat(32),
            caption: "总排口".into(),
            thumbnail: Some(thumbnail),
            note: String::new(),
        };
        let report = Report {
            title: "现场检查笔录电子证据核验报告".into(),
            subtitle: vec!["记录编号：R1".into()],
            blocks: vec![
                Block::Heading("七、逐项检查".into()),
                Block::Table {
                    columns: vec![("项目".into(), 0.3), ("结果".into(), 0.1), ("说明".into(), 0.6)], rows
                },
                Block::Photos(vec![photo.clone(); 7]),
            ],
            footer: "记录 R1".into(),
        };
        let (pages, shown) = layout(&report, &font);
        assert!(pages.len() > 5, "{} pages", pages.len());
        assert_eq!(shown.len(), 7);
        let mut images = 0;
        for page in &pages {
            for op in page {
                match op {
                    Op::Text { y, .. } => assert!(*y > TOP && *y <= BOTTOM, "text at {y}"),
                    Op::Fill { rect, .. } | Op::Frame { rect, .. } | Op::Image { rect, .. } => {
                        assert!(rect.1 >= TOP - 0.01 && rect.1 + rect.3 <= BOTTOM + 0.01, "{rect:?}");
                        assert!(rect.0 >= LEFT - 0.01 && rect.0 + rect.2 <= RIGHT + 0.01, "{rect:?}");
                        images += usize::from(matches!(op, Op::Image { .. }));
                    }
                }
            }
        }
        assert_eq!(images, 7);
        assert!(render(&report, &font).unwrap().starts_with(b"%PDF-"));
    }
}
