use super::*;

#[test]
fn defaults_match_the_design() {
    let c = Config::defaults().expect("embedded defaults are valid");
    assert_eq!(c.data_dir, PathBuf::from("./pushgate-data"));
    assert_eq!(c.dicom.listen, "0.0.0.0:11112".parse().unwrap());
    assert_eq!(c.dicom.ae_title, "PUSHGATE");
    assert_eq!(c.dicom.max_associations, 64);
    assert_eq!(c.dicom.max_associations_per_address, 16);
    assert_eq!(c.dicom.request_timeout, Duration::from_secs(5));
    assert_eq!(c.dicom.stable_after, Duration::from_secs(20));
    assert_eq!(c.http.listen, "0.0.0.0:8443".parse().unwrap());
    assert!(c.http.tls.is_none());
    assert_eq!(
        c.admin.token_file,
        PathBuf::from("./pushgate-data/admin.token")
    );
    assert_eq!(c.grants.default_ttl, Duration::from_secs(14 * 86400));
    assert_eq!(c.grants.max_ttl, Duration::from_secs(90 * 86400));
    assert!(c.import.watch_dir.is_none());
    assert!(c.forward.pacs.is_none());
    assert_eq!(c.local_http_addr(), "127.0.0.1:8443".parse().unwrap());
}

#[test]
fn user_values_override_only_their_keys() {
    let c = Config::from_toml_str(
        "data_dir = \"/var/lib/pushgate\"\n[dicom]\nae_title = \"GW1\"\nstable_after = \"1m\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/pushgate"));
    assert_eq!(c.dicom.ae_title, "GW1");
    assert_eq!(c.dicom.stable_after, Duration::from_secs(60));
    // untouched key in the same table keeps its default
    assert_eq!(c.dicom.max_associations, 64);
    assert_eq!(
        c.admin.token_file,
        PathBuf::from("/var/lib/pushgate/admin.token")
    );
}

#[test]
fn unknown_keys_are_refused_with_their_name() {
    let err = Config::from_toml_str("[dicom]\nae_titel = \"X\"\n", Path::new("t.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("ae_titel"), "{err}");
}

#[test]
fn bad_values_name_the_key() {
    for (text, key) in [
        ("[dicom]\nae_title = \"\"\n", "dicom.ae_title"),
        (
            "[dicom]\nae_title = \"MUCH_TOO_LONG_AE_TITLE\"\n",
            "dicom.ae_title",
        ),
        ("[dicom]\nstable_after = \"soon\"\n", "dicom.stable_after"),
        ("[dicom]\nlisten = \"11112\"\n", "dicom.listen"),
        ("[dicom]\nmax_associations = 0\n", "dicom.max_associations"),
        (
            "[dicom]\nmax_associations_per_address = 0\n",
            "dicom.max_associations_per_address",
        ),
        (
            "[dicom]\nrequest_timeout = \"0s\"\n",
            "dicom.request_timeout",
        ),
        ("[http]\ntls_cert = \"/x.pem\"\n", "http.tls_cert"),
        ("[grants]\ndefault_ttl = \"100d\"\n", "grants.default_ttl"),
        ("org_ura = \"12\"\n", "org_ura"),
        ("[forward]\npacs = \"PACS@host\"\n", "forward.pacs"),
        ("[forward]\npacs = \"PACS@::1:104\"\n", "forward.pacs"),
        ("[forward]\npacs = \"PACS@host:0\"\n", "forward.pacs"),
        ("[pacs]\naddress = \"PACS@host\"\n", "pacs.address"),
        (
            "[pacs]\ncalling_ae = \"FAR-TOO-LONG-AE-TITLE\"\n",
            "pacs.calling_ae",
        ),
        ("[pacs]\nretrieve = \"fetch\"\n", "pacs.retrieve"),
        ("[log]\nformat = \"xml\"\n", "log.format"),
    ] {
        let err = Config::from_toml_str(text, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{text:?} gave {err:?}");
    }
}

#[test]
fn pacs_defaults_to_our_ae_title_and_c_move() {
    let c = Config::from_toml_str(
        "[dicom]\nae_title = \"GW_A\"\n[pacs]\naddress = \"PACS@[::1]:11112\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(
        c.pacs.address.map(|p| p.to_string()).as_deref(),
        Some("PACS@[::1]:11112")
    );
    assert_eq!(c.pacs.calling_ae.as_str(), "GW_A");
    assert_eq!(c.pacs.retrieve, crate::config::Retrieve::Move);
    let c = Config::from_toml_str(
        "[pacs]\ncalling_ae = \"QR_US\"\nretrieve = \"get\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    assert!(c.pacs.address.is_none());
    assert_eq!(c.pacs.calling_ae.as_str(), "QR_US");
    assert_eq!(c.pacs.retrieve, crate::config::Retrieve::Get);
}

#[test]
fn forward_pacs_accepts_ae_at_host_port() {
    let c = Config::from_toml_str(
        "[forward]\npacs = \"PACS@10.0.0.5:104\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(
        c.forward.pacs.map(|p| p.to_string()).as_deref(),
        Some("PACS@10.0.0.5:104")
    );
}

/// The typed values (base::AeTitle, Ura, PacsAddress) refuse a bad value
/// with the messages the string checks gave, and keep the typed value.
#[test]
fn typed_values_keep_the_messages_and_the_parsed_value() {
    for (text, message) in [
        (
            "org_ura = \"1234567x\"\n",
            "config key org_ura: a URA is eight digits",
        ),
        (
            "[dicom]\nae_title = \"MUCH_TOO_LONG_AE_TITLE\"\n",
            "config key dicom.ae_title: \"MUCH_TOO_LONG_AE_TITLE\": an AE title has 1 to 16 characters",
        ),
        (
            "[dicom]\nallowed_calling_aes = [\"CT\\\\1\"]\n",
            "config key dicom.allowed_calling_aes: \"CT\\\\1\": an AE title has printable ASCII characters except '\\'",
        ),
        (
            "[forward]\npacs = \"PACS@host\"\n",
            "config key forward.pacs: expected \"AE@host:port\": \"PACS@host\" is not \"AE@host:port\": no ':port'",
        ),
    ] {
        let err = Config::from_toml_str(text, Path::new("t.toml")).unwrap_err();
        assert_eq!(err.to_string(), message, "{text:?}");
    }
    let c = Config::from_toml_str(
        "org_ura = \" 00000042 \"\n[dicom]\nae_title = \" GW \"\n[forward]\npacs = \"ORTHANC@[::1]:4242\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(c.org_ura.as_str(), "00000042");
    assert_eq!(c.dicom.ae_title.as_str(), "GW");
    let pacs = c.forward.pacs.expect("forward.pacs");
    assert_eq!(
        (pacs.called_ae.as_str(), pacs.host.as_str(), pacs.port),
        ("ORTHANC", "::1", 4242)
    );
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn environment_overrides_win_over_the_file() {
    let (c, effective) = Config::from_parts(
        "[dicom]\nae_title = \"FILE\"\nmax_associations = 8\n",
        Path::new("t.toml"),
        &env(&[
            ("PUSHGATE__DICOM__AE_TITLE", "ENV"),
            ("PUSHGATE__DICOM__ALLOWED_CALLING_AES", "[\"CT1\", \"MR2\"]"),
            ("PUSHGATE__DATA_DIR", "/srv/pg"),
            ("PUSHGATE_CONFIG", "/not/an/override.toml"),
            ("OTHER__DICOM__AE_TITLE", "IGNORED"),
        ]),
    )
    .unwrap();
    assert_eq!(c.dicom.ae_title, "ENV");
    assert_eq!(c.dicom.allowed_calling_aes, vec!["CT1", "MR2"]);
    assert_eq!(c.dicom.max_associations, 8, "the file's value stays");
    assert_eq!(c.data_dir, PathBuf::from("/srv/pg"));
    // The effective configuration shows every key with its final value and
    // reads back to the same configuration.
    assert!(effective.contains("ae_title = \"ENV\""), "{effective}");
    let again = Config::from_toml_str(&effective, Path::new("effective")).unwrap();
    assert_eq!(again.dicom.ae_title, "ENV");
    assert_eq!(again.data_dir, PathBuf::from("/srv/pg"));
}

#[test]
fn environment_overrides_are_checked_like_the_file() {
    for (name, value, expect) in [
        ("PUSHGATE__DICOM__AE_TITEL", "X", "no key dicom.ae_titel"),
        ("PUSHGATE__NOPE__KEY", "X", "no section [nope]"),
        ("PUSHGATE__DICOM", "X", "no key dicom"),
        (
            "PUSHGATE__DICOM__MAX_ASSOCIATIONS",
            "many",
            "not a TOML value",
        ),
    ] {
        let err = Config::from_parts("", Path::new("t.toml"), &env(&[(name, value)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(name) && err.contains(expect), "{name}: {err}");
    }
    // A value of the wrong type is reported by the key's own validation.
    let err = Config::from_parts(
        "",
        Path::new("t.toml"),
        &env(&[("PUSHGATE__DICOM__MAX_ASSOCIATIONS", "\"64\"")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("max_associations"), "{err}");
}

#[test]
fn retention_and_capacity_have_defaults_and_can_be_turned_off() {
    let c = Config::defaults().unwrap();
    assert_eq!(
        c.retention.keep_after_last_grant,
        Some(Duration::from_secs(7 * 86400))
    );
    assert_eq!(c.retention.max_age, Some(Duration::from_secs(30 * 86400)));
    assert_eq!(c.retention.sweep_every, Duration::from_secs(600));
    assert_eq!(c.capacity.high_water_percent, 90.0);
    assert_eq!(c.capacity.min_free_bytes, 1 << 30);

    let c = Config::from_toml_str(
        "[retention]\nkeep_after_last_grant = \"2s\"\nmax_age = \"off\"\nsweep_every = \"1s\"\n\
         [capacity]\nhigh_water = \"99.5%\"\nmin_free = \"500MB\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(
        c.retention.keep_after_last_grant,
        Some(Duration::from_secs(2))
    );
    assert_eq!(c.retention.max_age, None);
    assert_eq!(c.retention.sweep_every, Duration::from_secs(1));
    assert_eq!(c.capacity.high_water_percent, 99.5);
    assert_eq!(c.capacity.min_free_bytes, 500_000_000);
}

#[test]
fn bad_retention_and_capacity_values_name_the_key() {
    for (text, key) in [
        ("[retention]\nmax_age = \"a month\"\n", "retention.max_age"),
        (
            "[retention]\nkeep_after_last_grant = \"soon\"\n",
            "retention.keep_after_last_grant",
        ),
        (
            "[retention]\nsweep_every = \"0s\"\n",
            "retention.sweep_every",
        ),
        ("[capacity]\nhigh_water = \"90\"\n", "capacity.high_water"),
        ("[capacity]\nhigh_water = \"0%\"\n", "capacity.high_water"),
        ("[capacity]\nhigh_water = \"120%\"\n", "capacity.high_water"),
        ("[capacity]\nmin_free = \"1 parsec\"\n", "capacity.min_free"),
        ("[capacity]\nmin_free = \"-1GB\"\n", "capacity.min_free"),
    ] {
        let err = Config::from_toml_str(text, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{text:?} gave {err:?}");
    }
}

#[test]
fn sizes_take_decimal_and_binary_units() {
    assert_eq!(parse_size("k", "0").unwrap(), 0);
    assert_eq!(parse_size("k", "4096").unwrap(), 4096);
    assert_eq!(parse_size("k", "1GiB").unwrap(), 1 << 30);
    assert_eq!(parse_size("k", "1.5 GB").unwrap(), 1_500_000_000);
    assert_eq!(parse_size("k", "2mib").unwrap(), 2 << 20);
}

#[test]
fn changed_keys_names_every_difference() {
    let (_, a) = Config::from_parts("", Path::new("a"), &[]).unwrap();
    let (_, b) = Config::from_parts(
        "[retention]\nmax_age = \"1d\"\n[dicom]\nallowed_calling_aes = [\"CT1\"]\n",
        Path::new("b"),
        &[],
    )
    .unwrap();
    assert_eq!(
        changed_keys(&a, &b),
        vec!["dicom.allowed_calling_aes", "retention.max_age"]
    );
    assert!(changed_keys(&a, &a).is_empty());
}

#[test]
fn the_console_url_is_an_https_origin_and_nothing_more() {
    let parse = |url: &str| {
        Config::from_toml_str(
            &format!("[console]\nurl = \"{url}\"\n"),
            Path::new("t.toml"),
        )
    };
    assert_eq!(parse("").unwrap().console.url, None);
    assert_eq!(
        parse("https://pushgate.zkh.local:8444/")
            .unwrap()
            .console
            .url,
        Some("https://pushgate.zkh.local:8444".into())
    );
    assert_eq!(
        parse("https://[::1]:8444").unwrap().console.url,
        Some("https://[::1]:8444".into())
    );
    for bad in [
        "http://pushgate.zkh.local",
        "pushgate.zkh.local",
        "https://pushgate.zkh.local/console",
        "https://a@pushgate.zkh.local",
        "https://pushgate.zkh.local?x=1",
        "https://",
    ] {
        let e = parse(bad).expect_err(bad).to_string();
        assert!(e.contains("console.url"), "{bad}: {e}");
    }
}

/// Every entry is added to a share's `exclude_modalities`, which authz
/// checks: one it would refuse must stop the start, not every share.
#[test]
fn exclude_by_default_holds_modality_codes_only() {
    let parse = |list: &str| {
        Config::from_toml_str(
            &format!("[console]\nexclude_by_default = {list}\n"),
            Path::new("t.toml"),
        )
    };
    assert_eq!(
        parse("[\" pr \", \"ko\"]")
            .unwrap()
            .console
            .exclude_by_default,
        vec!["PR".to_string(), "KO".to_string()]
    );
    assert!(parse("[]").unwrap().console.exclude_by_default.is_empty());
    for bad in [
        "[\"\"]",
        "[\"P R\"]",
        "[\"PR;KO\"]",
        "[\"ABCDEFGHIJKLMNOPQ\"]",
    ] {
        let e = parse(bad).expect_err(bad).to_string();
        assert!(e.contains("console.exclude_by_default"), "{bad}: {e}");
    }
}
