//! Benchmark fixture: mints N authorization codes (each with its own grant, scope openid, expiring
//! in ten minutes) for a client and user straight into a facegate database, one code per line on
//! stdout, so a load tool can measure the real code exchange at /token. Not part of the product.
//!
//! usage: mint_codes DATABASE_URL CLIENT_ID USER_ID REDIRECT_URI N

use facegate_core::secret::{random_token, storage_hash};
use facegate_store::{Grant, Store};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 6,
        "usage: mint_codes DATABASE_URL CLIENT_ID USER_ID REDIRECT_URI N"
    );
    let store = Store::open(&args[1]).await?;
    let n: usize = args[5].parse()?;
    let now = facegate_server::server::now();
    for _ in 0..n {
        let grant = Grant {
            id: random_token(16),
            client_id: args[2].clone(),
            user_id: Some(args[3].clone()),
            scope: "openid".into(),
            auth_time: Some(now),
            amr: vec!["pwd".into()],
            acr: None,
            nonce: None,
            sid: None,
            created_at: now,
            revoked_at: None,
            claims: None,
        };
        store.create_grant(&grant).await?;
        let code = random_token(32);
        store
            .insert_code(&storage_hash(&code), &grant.id, &args[4], None, now + 600)
            .await?;
        println!("{code}");
    }
    Ok(())
}
