//! The real framings the library's tests use (`tests/data/framings`: the declared and run-time
//! `KSALLOCATOR_FRAMING_EX` of Microsoft's AVStream samples), embedded in the image.

macro_rules! framings {
    ($($name:literal),* $(,)?) => {
        /// Each framing's file name (without `.bin`) and bytes.
        pub(crate) const FRAMINGS: &[(&str, &[u8])] = &[$(
            ($name, include_bytes!(concat!("../../../tests/data/framings/", $name, ".bin"))),
        )*];
    };
}

framings![
    "wds-avscamera-image.declared",
    "wds-avscamera-image.runtime",
    "wds-avscamera-video.declared",
    "wds-avscamera-video.runtime",
    "wds-avshws-capture.declared",
    "wds-avshws-capture.runtime",
    "wds-avshws-capture.runtime-rgb24-320x240",
    "wds-avssamp-audio.declared",
    "wds-avssamp-audio.runtime",
    "wds-avssamp-audio.runtime-22050-hz-8-bit-mono",
    "wds-avssamp-audio.runtime-44100-hz-16-bit-stereo",
    "wds-avssamp-video.declared",
    "wds-avssamp-video.runtime",
    "wds-avssamp-video.runtime-uyvy-320x240",
];

/// The bytes of the framing named `name`, or an empty slice (which no check accepts).
pub(crate) fn framing(name: &str) -> &'static [u8] {
    FRAMINGS.iter().find(|(file, _)| *file == name).map_or(&[], |(_, bytes)| bytes)
}
