//! The tracker on scripted detection sequences at 5 frames per second.

use vigil_core::{
    BBox, ObjectDetection, ObjectFilter, Point, Polygon, Timestamp, TrackedObject, Tracker, Zone,
};
use vigil_detect::{filter_detections, ObjectTracker, TrackerOptions};

const FRAME_US: i64 = 200_000;

fn det(label: &str, score: f32, cx: f32, cy: f32, w: f32, h: f32) -> ObjectDetection {
    ObjectDetection {
        label: label.into(),
        score,
        bbox: BBox {
            x1: cx - w / 2.0,
            y1: cy - h / 2.0,
            x2: cx + w / 2.0,
            y2: cy + h / 2.0,
        },
    }
}

fn at(frame: i64) -> Timestamp {
    Timestamp(1_700_000_000_000_000 + frame * FRAME_US)
}

fn by_id(objects: &[TrackedObject], id: u64) -> &TrackedObject {
    objects
        .iter()
        .find(|o| o.tracker_id == id)
        .expect("object still tracked")
}

#[test]
fn the_id_survives_a_three_frame_miss() {
    let mut t = ObjectTracker::new(TrackerOptions::default());
    let mut id = None;
    for f in 0..14 {
        let x = 0.1 + f as f32 * 0.04;
        let dets = if (5..8).contains(&f) {
            vec![]
        } else {
            vec![det("person", 0.9, x, 0.5, 0.08, 0.25)]
        };
        let objs = t.update(at(f), &dets);
        assert_eq!(objs.len(), 1, "frame {f}");
        let this = objs[0].tracker_id;
        assert_eq!(*id.get_or_insert(this), this, "frame {f}: the id changed");
        if (5..8).contains(&f) {
            assert_eq!(objs[0].frames_missed as i64, f - 4);
            // Coasting: the box follows the velocity.
            let cx = (objs[0].bbox.x1 + objs[0].bbox.x2) / 2.0;
            assert!(
                (cx - x).abs() < 0.02,
                "frame {f}: {:?} should be near {x}",
                objs[0].bbox
            );
        }
    }
    assert!(t.take_removed().is_empty());
    // Gone for longer than max_missed: given up once.
    for f in 14..14 + 6 {
        t.update(at(f), &[]);
    }
    let removed = t.take_removed();
    assert_eq!(removed.len(), 1);
    assert_eq!(Some(removed[0].tracker_id), id);
    assert!(t.update(at(30), &[]).is_empty());
}

#[test]
fn two_crossing_objects_keep_their_ids() {
    let mut t = ObjectTracker::new(TrackerOptions::default());
    let (mut a, mut b) = (None, None);
    for f in 0..21 {
        let xa = 0.1 + f as f32 * 0.04;
        let xb = 0.9 - f as f32 * 0.04;
        let mut dets = vec![
            det("person", 0.9, xa, 0.5, 0.1, 0.3),
            det("person", 0.85, xb, 0.52, 0.1, 0.3),
        ];
        if f % 2 == 1 {
            dets.reverse();
        }
        let objs = t.update(at(f), &dets);
        assert_eq!(objs.len(), 2, "frame {f}: {objs:?}");
        let find = |x: f32| {
            objs.iter()
                .min_by(|p, q| {
                    let dp = ((p.bbox.x1 + p.bbox.x2) / 2.0 - x).abs();
                    let dq = ((q.bbox.x1 + q.bbox.x2) / 2.0 - x).abs();
                    dp.total_cmp(&dq)
                })
                .unwrap()
                .tracker_id
        };
        if (f - 10).abs() <= 1 {
            continue; // at the crossing the boxes coincide; ids are checked after it
        }
        let (ia, ib) = (find(xa), find(xb));
        assert_eq!(*a.get_or_insert(ia), ia, "frame {f}: A's id changed");
        assert_eq!(*b.get_or_insert(ib), ib, "frame {f}: B's id changed");
    }
    assert_ne!(a, b);
}

#[test]
fn an_object_that_stays_put_becomes_stationary() {
    let options = TrackerOptions::default();
    let n = options.stationary_frames as i64;
    let mut t = ObjectTracker::new(options);
    let mut id = 0;
    for f in 0..=n + 2 {
        let jitter = if f % 2 == 0 { 0.002 } else { -0.002 };
        let objs = t.update(at(f), &[det("car", 0.8, 0.5 + jitter, 0.6, 0.2, 0.15)]);
        id = objs[0].tracker_id;
        assert_eq!(objs[0].stationary, f >= n, "frame {f}");
    }
    // Stationary objects are kept much longer without detections.
    for f in n + 3..n + 3 + 20 {
        let objs = t.update(at(f), &[]);
        assert_eq!(by_id(&objs, id).frames_missed as i64, f - n - 2);
    }
    // Moving again ends it.
    let objs = t.update(at(n + 30), &[det("car", 0.8, 0.56, 0.6, 0.2, 0.15)]);
    let objs2 = t.update(at(n + 31), &[det("car", 0.8, 0.62, 0.6, 0.2, 0.15)]);
    assert_eq!(objs[0].tracker_id, id);
    assert!(!by_id(&objs2, id).stationary);
}

#[test]
fn scores_are_smoothed_before_an_object_counts() {
    let mut t = ObjectTracker::new(TrackerOptions::default());
    // One confident frame is not enough.
    let objs = t.update(at(0), &[det("person", 0.95, 0.3, 0.5, 0.1, 0.3)]);
    assert!(!objs[0].true_positive);
    let objs = t.update(at(1), &[det("person", 0.9, 0.31, 0.5, 0.1, 0.3)]);
    assert!(objs[0].true_positive, "two confident frames: {:?}", objs[0]);
    assert!(objs[0].top_score >= 0.9);

    // A weak object never counts.
    let mut t = ObjectTracker::new(TrackerOptions::default());
    for f in 0..10 {
        let objs = t.update(at(f), &[det("dog", 0.55, 0.3, 0.5, 0.1, 0.1)]);
        assert!(!objs[0].true_positive);
    }
    // Unless its label's threshold is lower.
    let mut dog = ObjectFilter::new("dog");
    dog.threshold = 0.5;
    let mut t = ObjectTracker::new(TrackerOptions {
        filters: vec![dog],
        ..Default::default()
    });
    let mut real = false;
    for f in 0..3 {
        real = t.update(at(f), &[det("dog", 0.55, 0.3, 0.5, 0.1, 0.1)])[0].true_positive;
    }
    assert!(real);
}

fn right_half(inertia: u32, loitering_time_s: u32) -> Zone {
    Zone {
        name: "porch".into(),
        polygon: Polygon {
            points: vec![
                Point { x: 0.5, y: 0.0 },
                Point { x: 1.0, y: 0.0 },
                Point { x: 1.0, y: 1.0 },
                Point { x: 0.5, y: 1.0 },
            ],
        },
        kind: "entry_point".into(),
        enabled: true,
        color: "#ff0000".into(),
        labels: vec!["person".into()],
        inertia,
        loitering_time_s,
    }
}

#[test]
fn zones_count_after_inertia_and_loitering_after_its_time() {
    let mut t = ObjectTracker::new(TrackerOptions {
        zones: vec![right_half(3, 2)],
        ..Default::default()
    });
    // Walk right: x = 0.275, 0.325, ...; the foot enters the zone at frame 5 (x = 0.525).
    let mut entered_at = None;
    for f in 0..10 {
        let x = 0.275 + f as f32 * 0.05;
        let objs = t.update(at(f), &[det("person", 0.9, x, 0.5, 0.05, 0.2)]);
        if !objs[0].current_zones.is_empty() && entered_at.is_none() {
            entered_at = Some(f);
            assert_eq!(objs[0].entered_zones, vec!["porch".to_owned()]);
        }
    }
    // Inside from frame 5; counted from its third frame inside.
    assert_eq!(entered_at, Some(7));
    // Standing in it: loitering after 2 s (10 frames at 5 fps) in the zone.
    let mut loitering_at = None;
    for f in 10..30 {
        let objs = t.update(at(f), &[det("person", 0.9, 0.8, 0.5, 0.05, 0.2)]);
        if !objs[0].loitering_zones.is_empty() && loitering_at.is_none() {
            loitering_at = Some(f);
        }
    }
    assert_eq!(loitering_at, Some(17), "entered at frame 7, plus 2 s");
    // Leaving: out of current zones at once, still in entered zones.
    for f in 30..37 {
        let x = 0.8 - (f - 29) as f32 * 0.05;
        let objs = t.update(at(f), &[det("person", 0.9, x, 0.5, 0.05, 0.2)]);
        assert_eq!(objs.len(), 1);
        assert_eq!(
            objs[0].current_zones.is_empty(),
            x < 0.5,
            "frame {f}, x {x}"
        );
    }
    let objs = t.objects();
    assert_eq!(objs[0].entered_zones, vec!["porch".to_owned()]);

    // A label the zone does not list never enters it, and a short visit under the inertia
    // does not count.
    let mut t = ObjectTracker::new(TrackerOptions {
        zones: vec![right_half(3, 0)],
        ..Default::default()
    });
    for f in 0..6 {
        let objs = t.update(
            at(f),
            &[
                det("car", 0.9, 0.8, 0.5, 0.1, 0.1),
                det("person", 0.9, if f < 2 { 0.8 } else { 0.2 }, 0.5, 0.05, 0.2),
            ],
        );
        assert!(
            objs.iter().all(|o| o.entered_zones.is_empty()),
            "frame {f}: {objs:?}"
        );
    }
}

#[test]
fn filters_drop_what_the_settings_exclude() {
    let mut f = ObjectFilter::new("person");
    f.min_score = 0.6;
    f.min_area = 0.01;
    f.max_ratio = 1.0; // people are taller than wide
    f.masks = vec![Polygon {
        points: vec![
            Point { x: 0.0, y: 0.9 },
            Point { x: 0.2, y: 0.9 },
            Point { x: 0.2, y: 1.0 },
            Point { x: 0.0, y: 1.0 },
        ],
    }];
    let dets = vec![
        det("person", 0.9, 0.5, 0.5, 0.1, 0.3),   // kept
        det("person", 0.5, 0.5, 0.5, 0.1, 0.3),   // score
        det("person", 0.9, 0.5, 0.5, 0.02, 0.05), // area
        det("person", 0.9, 0.5, 0.5, 0.4, 0.2),   // ratio
        det("person", 0.9, 0.1, 0.8, 0.05, 0.2),  // foot in the mask
        det("car", 0.9, 0.5, 0.5, 0.2, 0.1),      // label not tracked
    ];
    let kept = filter_detections(&dets, &["person".to_owned()], &[f], (1280, 720));
    assert_eq!(kept, vec![dets[0].clone()]);
}
