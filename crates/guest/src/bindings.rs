//! Bindings for the custom imports, generated from the repository's WIT.
//!
//! The world is written inline so the WIT packages stay where they are
//! (`wit/vnext-compute`, `wit/deps/wasi-keyvalue-2024-10-17`). The runtime
//! path reuses spin-sdk's wit-bindgen copy, so there is one runtime per
//! component. A component that never calls an import does not import it:
//! the component encoder keeps only the imports the code uses.
#![allow(missing_docs, clippy::all)]

spin_sdk::wit_bindgen::generate!({
    inline: r#"
        package vnext:guest;

        world api {
            import vnext:compute/hypervisor@0.1.0;
            include wasi:keyvalue/imports@0.2.0-draft2;
        }
    "#,
    path: ["../../wit/deps/wasi-keyvalue-2024-10-17", "../../wit/vnext-compute"],
    world: "vnext:guest/api",
    runtime_path: "::spin_sdk::wit_bindgen::rt",
    generate_all,
});
