//! GUID constants (`ks.h`, `ksmedia.h`, `wdmguid.h`).

use crate::layout::GuidValue;

ks_guids! {
    GUIDS_0;
    /// The null GUID.
    GUID_NULL = 0x00000000_0000_0000_0000_000000000000;
    /// Any memory type (GUID_NULL).
    KSMEMORY_TYPE_WILDCARD = 0x00000000_0000_0000_0000_000000000000;
    /// Any memory type (GUID_NULL).
    KSMEMORY_TYPE_DONT_CARE = 0x00000000_0000_0000_0000_000000000000;
    /// Any memory or bus type (GUID_NULL).
    KS_TYPE_DONT_CARE = 0x00000000_0000_0000_0000_000000000000;
    /// System memory.
    KSMEMORY_TYPE_SYSTEM = 0x091BB638_603F_11D1_B067_00A0C9062802;
    /// User-mode memory.
    KSMEMORY_TYPE_USER = 0x8CB0FC28_7893_11D1_B069_00A0C9062802;
    /// Kernel paged pool.
    KSMEMORY_TYPE_KERNEL_PAGED = 0xD833F8F8_7894_11D1_B069_00A0C9062802;
    /// Kernel non-paged pool.
    KSMEMORY_TYPE_KERNEL_NONPAGED = 0x4A6D5FC4_7895_11D1_B069_00A0C9062802;
    /// Device memory of an unspecified kind.
    KSMEMORY_TYPE_DEVICE_UNKNOWN = 0x091BB639_603F_11D1_B067_00A0C9062802;
}

ks_guids! {
    GUIDS_1;
    /// The Connection property set (state, format, allocator framing).
    KSPROPSETID_Connection = 0x1D58C920_AC9B_11CF_A5D6_28DB04C10000;
    /// The Stream property set (allocator handle, clock, pipe id).
    KSPROPSETID_Stream = 0x65AABA60_98AE_11CF_A10D_0020AFD156E4;
    /// The Pin property set (instances, data ranges, intersection).
    KSPROPSETID_Pin = 0x8C134960_51AD_11CF_878A_94F801C10000;
    /// The StreamAllocator property set of allocator objects.
    KSPROPSETID_StreamAllocator = 0xCF6E4342_EC87_11CF_A130_0020AFD156E4;
    /// The StreamAllocator method set (IRP-based alloc and free).
    KSMETHODSETID_StreamAllocator = 0xCF6E4341_EC87_11CF_A130_0020AFD156E4;
    /// The StreamAllocator event set (free-frame notification).
    KSEVENTSETID_StreamAllocator = 0x75D95571_073C_11D0_A161_0020AFD156E4;
}

ks_guids! {
    GUIDS_2;
    /// Reference GUID of a filter.
    KSNAME_Filter = 0x9B365890_165F_11D0_A195_0020AFD156E4;
    /// Object class of a pin.
    KSNAME_Pin = 0x146F1A80_4791_11D0_A5D6_28DB04C10000;
    /// Object class of a clock.
    KSNAME_Clock = 0x53172480_4791_11D0_A5D6_28DB04C10000;
    /// Object class of an allocator (`KSSTRING_Allocator` in string form).
    KSNAME_Allocator = 0x642F5D00_4791_11D0_A5D6_28DB04C10000;
    /// Filter category: capture.
    KSCATEGORY_CAPTURE = 0x65E8773D_8F56_11D0_A3B9_00A0C9223196;
    /// Filter category: video.
    KSCATEGORY_VIDEO = 0x6994AD05_93EF_11D0_A3CC_00A0C9223196;
    /// Filter category: data transform (a filter that converts or modifies the data it is given).
    KSCATEGORY_DATATRANSFORM = 0x2EB07EA0_7E70_11D0_A5D6_28DB04C10000;
    /// Filter category: video camera.
    KSCATEGORY_VIDEO_CAMERA = 0xE5323777_F976_4F5B_9B55_B94699C46E44;
    /// The standard streaming interface set.
    KSINTERFACESETID_Standard = 0x1A8766A0_62CE_11CF_A5D6_28DB04C10000;
    /// The standard medium set.
    KSMEDIUMSETID_Standard = 0x4747B320_62CE_11CF_A5D6_28DB04C10000;
    /// Major format: video.
    KSDATAFORMAT_TYPE_VIDEO = 0x73646976_0000_0010_8000_00AA00389B71;
    /// Format specifier: a `KS_VIDEOINFOHEADER` follows.
    KSDATAFORMAT_SPECIFIER_VIDEOINFO = 0x05589F80_C356_11CE_BF01_00AA0055595A;
    /// Subtype: packed YUV 4:2:2 (the DirectShow `MEDIASUBTYPE_YUY2` value).
    KSDATAFORMAT_SUBTYPE_YUY2 = 0x32595559_0000_0010_8000_00AA00389B71;
    /// Subtype: 24-bit RGB (the DirectShow `MEDIASUBTYPE_RGB24` value).
    KSDATAFORMAT_SUBTYPE_RGB24 = 0xE436EB7D_524F_11CE_9F53_0020AF0BA770;
    /// Pin category: capture.
    PINNAME_CAPTURE = 0xFB6C4281_0353_11D1_905F_0000C0CC16BA;
    /// Pin name: video capture.
    PINNAME_VIDEO_CAPTURE = 0xFB6C4281_0353_11D1_905F_0000C0CC16BA;
}

ks_guids! {
    GUIDS_OUTSIDE_KS_H;
    /// Bus type: PCI.
    GUID_BUS_TYPE_PCI = 0xC8EBDFB0_B510_11D0_80E5_00A0C92542E3;
    /// Bus type: USB.
    GUID_BUS_TYPE_USB = 0x9D7DEBBC_C85D_11D1_9EB4_006008C3A19A;
    /// Bus type: IEEE 1394.
    GUID_BUS_TYPE_1394 = 0xF74E73EB_9AC5_45EB_BE4D_772CC71DDFB3;
    /// Bus type: AV/C.
    GUID_BUS_TYPE_AVC = 0xC06FF265_AE09_48F0_812C_16753D7CBA83;
    /// Filter category: sensor camera (newer SDKs).
    KSCATEGORY_SENSOR_CAMERA = 0x24E552D7_6523_47F7_A647_D3465BF1F5CA;
}

/// Every GUID of this module, for the conformance test.
pub(crate) const ALL_GUIDS: &[&[GuidValue]] = &[GUIDS_0, GUIDS_1, GUIDS_2, GUIDS_OUTSIDE_KS_H];
