//! MP4 segments, salvage and clips, checked with ffprobe on H.264 made by ffmpeg.

use std::path::Path;

use vigil_core::h264::AccessUnits;
use vigil_core::mp4::{self, ClipPart, SegmentWriter, TIMESCALE};
use vigil_core::testing::{ffprobe, make_h264, make_mp4};

const FPS: u32 = 30;
const TICK: i64 = (TIMESCALE / FPS) as i64;

/// Writes the first `n` pictures of `h264` into a segment at `path`, 30 fps.
fn write_segment(h264: &Path, path: &Path, n: usize) -> (u64, u64) {
    let aus = AccessUnits::default()
        .split(&std::fs::read(h264).unwrap())
        .unwrap();
    let mut w = SegmentWriter::create(path, aus[0].params.clone(), TIMESCALE.into()).unwrap();
    for (i, au) in aus.iter().take(n).enumerate() {
        w.push(i as i64 * TICK, &au.data, au.is_key).unwrap();
    }
    let done = w.finish(Some(n as i64 * TICK)).unwrap();
    (done.duration_ticks, done.size)
}

#[test]
fn segment_plays_with_the_right_duration_and_frames() {
    let dir = tempfile::tempdir().unwrap();
    let h264 = make_h264(dir.path(), 320, 240, FPS, 4, 30);
    let seg = dir.path().join("seg.mp4");
    let (ticks, size) = write_segment(&h264, &seg, 120);
    assert_eq!(ticks, 120 * TICK as u64);
    assert_eq!(size, std::fs::metadata(&seg).unwrap().len());

    let p = ffprobe(&seg);
    assert_eq!((p.codec.as_str(), p.width, p.height), ("h264", 320, 240));
    assert_eq!(p.frames, 120);
    assert!((p.duration - 4.0).abs() < 0.01, "{p:?}");

    let info = mp4::read(&seg).unwrap();
    assert!(info.fragmented);
    assert_eq!(info.samples.len(), 120);
    assert_eq!(info.duration(), 120 * TICK as u64);
    let keys: Vec<usize> = (0..120).filter(|&i| info.samples[i].is_key).collect();
    assert_eq!(keys, vec![0, 30, 60, 90]);
    assert_eq!(info.complete_len, size);
}

#[test]
fn reads_a_progressive_mp4_made_by_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let h264 = make_h264(dir.path(), 320, 240, FPS, 2, 15);
    let mp4 = make_mp4(&h264, FPS);
    let info = mp4::read(&mp4).unwrap();
    assert!(!info.fragmented);
    assert_eq!(info.samples.len(), 60);
    assert_eq!((info.params.width, info.params.height), (320, 240));
    assert_eq!(info.samples.iter().filter(|s| s.is_key).count(), 4);
    // Each sample is an AVC access unit whose NAL lengths add up exactly.
    let data = std::fs::read(&mp4).unwrap();
    for s in &info.samples {
        let au = &data[s.offset as usize..(s.offset + u64::from(s.size)) as usize];
        vigil_core::h264::avc_nals(au).unwrap();
    }
}

/// A segment cut at every kind of place (inside the header, a moof, an mdat) is salvaged to its
/// complete fragments, and what remains plays.
#[test]
fn salvage_keeps_complete_fragments_of_a_cut_file() {
    let dir = tempfile::tempdir().unwrap();
    let h264 = make_h264(dir.path(), 320, 240, FPS, 4, 30);
    let seg = dir.path().join("whole.mp4");
    write_segment(&h264, &seg, 120);
    let whole = std::fs::read(&seg).unwrap();
    let full = mp4::read(&seg).unwrap();

    let mut kept_counts = Vec::new();
    for cut in [
        40,
        700,
        whole.len() / 5,
        whole.len() / 2,
        whole.len() - 3,
        whole.len(),
    ] {
        let part = dir.path().join(format!("cut-{cut}.mp4"));
        std::fs::write(&part, &whole[..cut]).unwrap();
        match mp4::salvage(&part).unwrap() {
            None => kept_counts.push(0),
            Some(info) => {
                // Kept samples are a prefix of the original ones, with their data inside.
                assert_eq!(info.samples[..], full.samples[..info.samples.len()]);
                let len = std::fs::metadata(&part).unwrap().len();
                assert_eq!(len, info.complete_len);
                let p = ffprobe(&part);
                assert_eq!(p.frames as usize, info.samples.len());
                let secs = info.duration() as f64 / f64::from(TIMESCALE);
                assert!((p.duration - secs).abs() < 0.01, "{p:?} vs {secs}");
                kept_counts.push(info.samples.len());
            }
        }
    }
    assert_eq!(kept_counts[0], 0, "a cut header holds nothing");
    assert_eq!(kept_counts[5], 120, "an uncut file loses nothing");
    assert!(
        kept_counts.windows(2).all(|w| w[0] <= w[1]),
        "{kept_counts:?}"
    );
    assert!(
        kept_counts[3] > 0 && kept_counts[3] < 120,
        "{kept_counts:?}"
    );
}

#[test]
fn garbage_files_are_data_loss_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("junk.mp4");
    for n in [0usize, 3, 8, 100, 5000] {
        let junk: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(&f, &junk).unwrap();
        assert!(mp4::read(&f).is_err());
        assert!(mp4::salvage(&f).unwrap().is_none());
    }
}

/// Two segments joined into one clip from a key frame, without re-encoding.
#[test]
fn clip_joins_segments() {
    let dir = tempfile::tempdir().unwrap();
    let h264 = make_h264(dir.path(), 320, 240, FPS, 4, 30);
    let a = dir.path().join("a.mp4");
    let b = dir.path().join("b.mp4");
    write_segment(&h264, &a, 120);
    write_segment(&h264, &b, 90);
    let ia = mp4::read(&a).unwrap();
    let ib = mp4::read(&b).unwrap();
    let out = dir.path().join("clip.mp4");
    let mut f = std::fs::File::create(&out).unwrap();
    let parts = [
        ClipPart {
            path: &a,
            samples: ia.samples[60..].to_vec(),
        },
        ClipPart {
            path: &b,
            samples: ib.samples.clone(),
        },
    ];
    let n = mp4::write_clip(&mut f, &ia.params, &parts).unwrap();
    drop(f);
    assert_eq!(n, std::fs::metadata(&out).unwrap().len());
    let p = ffprobe(&out);
    assert_eq!(p.frames, 150);
    assert!((p.duration - 5.0).abs() < 0.01, "{p:?}");
    let ic = mp4::read(&out).unwrap();
    assert!(!ic.fragmented);
    assert_eq!(ic.samples.len(), 150);
    assert!(ic.samples[0].is_key && ic.samples[60].is_key);
}
