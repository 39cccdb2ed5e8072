#![doc = include_str!("index.md")]
#![no_std]

pub mod driver_author {
    #![doc = include_str!("driver-author.md")]
}

pub mod test_engineer {
    #![doc = include_str!("test-engineer.md")]
}

pub mod host {
    #![doc = include_str!("host.md")]
}

pub mod robustness {
    #![doc = include_str!("robustness.md")]
}

pub mod benchmarks {
    #![doc = include_str!("benchmarks.md")]
}

pub mod windows_build {
    #![doc = include_str!("windows-build.md")]
}

pub mod contributing {
    #![doc = include_str!("contributing.md")]
}
