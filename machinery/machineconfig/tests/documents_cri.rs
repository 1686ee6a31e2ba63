//! CRI document kinds: full documents round-trip, unknown fields are refused, invalid values
//! are reported with the kind and field, named kinds refuse duplicates.

mod documents_support;

use documents_support::*;
use machineconfig::documents::Document;

const GROUP: &str = "cri";

/// (fixture, kind, named).
const KINDS: &[(&str, &str, bool)] = &[
    ("registry_mirror.yaml", "RegistryMirrorConfig", true),
    ("registry_auth.yaml", "RegistryAuthConfig", true),
    ("registry_auth_token.yaml", "RegistryAuthConfig", true),
    ("registry_auth_basic.yaml", "RegistryAuthConfig", true),
    ("registry_tls.yaml", "RegistryTLSConfig", true),
    ("cri_customization.yaml", "CRICustomizationConfig", true),
    (
        "cri_base_runtime_spec.yaml",
        "CRIBaseRuntimeSpecConfig",
        false,
    ),
    ("image_cache.yaml", "ImageCacheConfig", false),
];

fn doc(kind: &str, body: &str) -> String {
    format!("apiVersion: v1alpha1\nkind: {kind}\n{body}")
}

#[test]
fn full_documents_round_trip() {
    for (file, kind, _) in KINDS {
        assert_valid_round_trip(&fixture(GROUP, file), kind);
    }
}

#[test]
fn decoded_values() {
    let config = assert_valid_round_trip(
        &fixture(GROUP, "registry_mirror.yaml"),
        "RegistryMirrorConfig",
    );
    let Document::RegistryMirror(mirror) = &config.documents[0] else {
        panic!("not a RegistryMirrorConfig");
    };
    assert_eq!(mirror.name, "ghcr.io");
    assert_eq!(mirror.endpoints.len(), 2);
    assert_eq!(mirror.endpoints[0].override_path, Some(true));
    assert_eq!(mirror.skip_fallback, Some(true));

    let config = assert_valid_round_trip(
        &fixture(GROUP, "cri_base_runtime_spec.yaml"),
        "CRIBaseRuntimeSpecConfig",
    );
    let Document::CriBaseRuntimeSpec(spec) = &config.documents[0] else {
        panic!("not a CRIBaseRuntimeSpecConfig");
    };
    let overrides = spec.overrides.as_ref().expect("overrides");
    assert_eq!(
        overrides["process"]["rlimits"][0]["hard"].as_u64(),
        Some(65536)
    );
}

#[test]
fn unknown_fields_are_rejected() {
    for (file, _, _) in KINDS {
        assert_unknown_top_level_field(&fixture(GROUP, file));
    }
    let (line, path, _) = decode_error(&doc(
        "RegistryMirrorConfig",
        "name: docker.io\nendpoints:\n  - url: https://m.example.org\n    overridepath: true\n",
    ));
    assert_eq!(
        (line, path.as_str()),
        (Some(6), "endpoints[0].overridepath")
    );
    let (line, path, _) = decode_error(&doc(
        "RegistryTLSConfig",
        "name: r\nclientIdentity:\n  certificate: x\n",
    ));
    assert_eq!(
        (line, path.as_str()),
        (Some(5), "clientIdentity.certificate")
    );
    let (line, path, _) = decode_error(&doc("ImageCacheConfig", "local:\n  enable: true\n"));
    assert_eq!((line, path.as_str()), (Some(4), "local.enable"));
}

#[test]
fn invalid_values_are_reported() {
    assert_invalid(
        &doc(
            "RegistryMirrorConfig",
            "endpoints:\n  - url: https://m.example.org\n",
        ),
        "RegistryMirrorConfig.name",
        "required",
    );
    assert_invalid(
        &doc(
            "RegistryMirrorConfig",
            "name: docker.io\nendpoints:\n  - url: ftp://m.example.org\n",
        ),
        "RegistryMirrorConfig \"docker.io\".endpoints[0].url",
        "http",
    );
    assert_invalid(
        &doc(
            "RegistryMirrorConfig",
            "name: docker.io\nendpoints:\n  - overridePath: true\n",
        ),
        "RegistryMirrorConfig \"docker.io\".endpoints[0].url",
        "required",
    );
    assert_invalid(
        &doc("RegistryAuthConfig", "username: a\npassword: b\n"),
        "RegistryAuthConfig.name",
        "required",
    );
    assert_invalid(
        &doc(
            "RegistryAuthConfig",
            "name: r\nusername: a\nidentityToken: t\n",
        ),
        "RegistryAuthConfig \"r\"",
        "mutually exclusive",
    );
    assert_invalid(
        &doc("RegistryAuthConfig", "name: r\nauth: YTpi\nusername: a\n"),
        "RegistryAuthConfig \"r\".auth",
        "cannot be combined",
    );
    assert_invalid(
        &doc("RegistryTLSConfig", "name: r\nca: not a certificate\n"),
        "RegistryTLSConfig \"r\".ca",
        "PEM",
    );
    assert_invalid(
        &doc("RegistryTLSConfig", "name: r\nclientIdentity:\n  key: x\n"),
        "RegistryTLSConfig \"r\".clientIdentity.cert",
        "required",
    );
    let tls = fixture(GROUP, "registry_tls.yaml");
    let start = tls.find("  key: |").expect("key in fixture");
    let end = tls.find("ca: |").expect("ca in fixture");
    let bad_key = format!("{}  key: just text\n{}", &tls[..start], &tls[end..]);
    assert_invalid(
        &bad_key,
        "RegistryTLSConfig \"registry.internal.example.org:5000\".clientIdentity.key",
        "PEM",
    );
    assert_invalid(
        &doc("RegistryAuthConfig", "name: a/../../b\nusername: u\n"),
        "RegistryAuthConfig.name",
        "not a registry host",
    );
    assert_invalid(
        &doc("RegistryTLSConfig", "name: '*'\ninsecureSkipVerify: true\n"),
        "RegistryTLSConfig.name",
        "every registry",
    );
    assert_invalid(
        &doc("RegistryTLSConfig", "insecureSkipVerify: true\n"),
        "RegistryTLSConfig.name",
        "required",
    );
    assert_invalid(
        &doc(
            "CRICustomizationConfig",
            "name: customization\ncontent: 'x = 1'\n",
        ),
        "CRICustomizationConfig.name",
        "reserved",
    );
    assert_invalid(
        &doc("CRICustomizationConfig", "name: '-gpu'\ncontent: 'x = 1'\n"),
        "CRICustomizationConfig.name",
        "alphanumeric",
    );
    assert_invalid(
        &doc(
            "CRICustomizationConfig",
            "name: gpu\ncontent: |\n  [plugins]\n  a = \n",
        ),
        "CRICustomizationConfig \"gpu\".content",
        "not valid TOML (line 2 of the content)",
    );
    assert_invalid(
        &doc("CRIBaseRuntimeSpecConfig", "overrides: [1, 2]\n"),
        "CRIBaseRuntimeSpecConfig.overrides",
        "mapping",
    );
}

#[test]
fn conflicts_with_the_v1alpha1_document() {
    let spec = fixture(GROUP, "cri_base_runtime_spec.yaml");
    assert_invalid(
        &with_v1alpha1("  baseRuntimeSpecOverrides:\n    process: {}\n", &spec),
        "CRIBaseRuntimeSpecConfig",
        "baseRuntimeSpecOverrides",
    );
    let cache = fixture(GROUP, "image_cache.yaml");
    assert_invalid(
        &with_v1alpha1(
            "  features:\n    imageCache:\n      localEnabled: true\n",
            &cache,
        ),
        "ImageCacheConfig",
        "imageCache",
    );
    for document in [spec, cache] {
        let errors = validation_errors(&with_v1alpha1("", &document));
        assert!(
            errors
                .iter()
                .all(|e| !e.path.starts_with("CRIBase") && !e.path.starts_with("ImageCache")),
            "{errors:?}"
        );
    }
}

#[test]
fn named_kinds_refuse_duplicates() {
    for (file, kind, named) in KINDS {
        if *named {
            assert_duplicate_refused(&fixture(GROUP, file), kind);
        }
    }
}
