//! Auth at the member: who a request is from, the checks made where a request is served
//! (reads), the writes that carry their caller to the apply-time check, and the auth store's
//! own RPCs.
//!
//! A token resolves through this member's token table; without one, a verified client
//! certificate's common name stands for the user, as in etcd. While auth is off nobody is
//! resolved and nothing is checked. Passwords are hashed and verified here (bcrypt is slow and
//! salted with randomness, so never inside the apply), and a token's random half is drawn here.

use rand::Rng;

use super::Server;
use crate::auth::{
    Access, AuthChange, AuthError, AuthInfo, AuthOutcome, Credentials, KeyPermission,
};
use crate::clock;
use crate::command::{Command, CommandResult, Reply};
use crate::error::{Error, Result};
use crate::proto::authpb::Permission;
use crate::proto::etcdserverpb::{RangeRequest, RangeResponse};

/// etcd's simple tokens start with this many random letters, then `.` and the log index.
const TOKEN_RANDOM_LEN: usize = 16;

fn random_letters() -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut rng = rand::rng();
    (0..TOKEN_RANDOM_LEN)
        .map(|_| LETTERS[rng.random_range(0..LETTERS.len())] as char)
        .collect()
}

impl Server {
    /// Who `creds` name, or `None` when auth is off or the request names nobody. A token this
    /// member does not know (expired, or never issued) is refused.
    pub fn caller(&self, creds: &Credentials) -> Result<Option<AuthInfo>> {
        let revision = {
            let state = self.sm.read();
            if !state.auth.enabled() {
                return Ok(None);
            }
            state.auth.revision()
        };
        if let Some(token) = &creds.token {
            let user = self
                .sm
                .tokens()
                .lookup(token, clock::now(), self.auth.token_ttl)
                .ok_or(AuthError::InvalidAuthToken)?;
            return Ok(Some(AuthInfo { user, revision }));
        }
        Ok(creds.cert_cn.as_ref().map(|cn| AuthInfo {
            user: cn.clone(),
            revision,
        }))
    }

    /// `caller`, where a token this member does not know yet gets a second look after the read
    /// barrier: another member may have issued it a moment ago, its Authenticate entry
    /// committed but not yet applied here (a client authenticates at one endpoint, then uses
    /// the token at all).
    pub async fn caller_settled(&self, creds: &Credentials) -> Result<Option<AuthInfo>> {
        match self.caller(creds) {
            Err(Error::Auth(AuthError::InvalidAuthToken)) => {
                let _ = self.read_barrier().await;
                self.caller(creds)
            }
            other => other,
        }
    }

    /// `caller_settled` for the checks that resolve the caller themselves (the admin-only
    /// Maintenance calls): waits, when needed, so their own lookup finds the token.
    pub async fn settle_token(&self, creds: &Credentials) {
        let _ = self.caller_settled(creds).await;
    }

    /// Replicates a client's `cmd` with its caller, so applying checks its permissions.
    pub async fn request_as<R: Reply>(&self, creds: &Credentials, cmd: Command) -> Result<R> {
        let caller = self.caller_settled(creds).await?;
        self.request(Command::As {
            caller,
            cmd: Box::new(cmd),
        })
        .await
    }

    /// A client's Range: READ on its range, judged after the read barrier like the read itself.
    pub async fn range_as(&self, creds: &Credentials, req: &RangeRequest) -> Result<RangeResponse> {
        let caller = self.caller_settled(creds).await?;
        let resp = self.range(req).await?;
        self.check_read(caller.as_ref(), &req.key, &req.range_end)?;
        Ok(resp)
    }

    fn check_read(&self, who: Option<&AuthInfo>, key: &[u8], range_end: &[u8]) -> Result<()> {
        Ok(self
            .sm
            .read()
            .auth
            .check(who, Access::Read, key, range_end)?)
    }

    /// A watch stream's check, made as each watcher is created (READ on its range): the
    /// token is resolved each time, so a stream outliving its token loses the right to watch.
    pub fn check_watch(&self, creds: &Credentials, key: &[u8], range_end: &[u8]) -> Result<()> {
        let who = self.caller(creds)?;
        self.check_read(who.as_ref(), key, range_end)
    }

    /// Whether auth is on, and the auth store's revision.
    pub fn auth_status(&self) -> (bool, u64) {
        let state = self.sm.read();
        (state.auth.enabled(), state.auth.revision())
    }

    /// Checks a password and, if it matches, has the cluster issue a token for `name`.
    pub async fn authenticate(&self, name: &str, password: &str) -> Result<String> {
        self.read_barrier().await?;
        let (hash, auth_revision) = {
            let state = self.sm.read();
            if !state.auth.enabled() {
                return Err(AuthError::NotEnabled.into());
            }
            let user = state.auth.user(name).ok_or(AuthError::AuthFailed)?;
            (user.password_hash.clone(), state.auth.revision())
        };
        // A user added with no password has an empty hash and cannot log in by password.
        if hash.is_empty() || !bcrypt::verify(password, &hash).unwrap_or(false) {
            return Err(AuthError::AuthFailed.into());
        }
        let change = AuthChange::Authenticate {
            name: name.to_string(),
            random: random_letters(),
            auth_revision,
        };
        match self.write(Command::Auth(change)).await? {
            CommandResult::Auth(AuthOutcome::Token { token, .. }) => {
                self.sm.tokens().sweep(clock::now(), self.auth.token_ttl);
                Ok(token)
            }
            other => Err(Error::Internal(format!(
                "unexpected authenticate result {other:?}"
            ))),
        }
    }

    /// A bcrypt hash of `password` at the configured cost, in etcd's `$2a$` form.
    pub fn hash_password(&self, password: &str) -> Result<String> {
        bcrypt::hash_with_result(password, self.auth.bcrypt_cost)
            .map(|h| h.format_for_version(bcrypt::Version::TwoA))
            .map_err(|e| Error::Internal(format!("bcrypt: {e}")))
    }

    /// Applies an auth change on behalf of `creds` (the root role is checked at apply).
    pub async fn auth_change(&self, creds: &Credentials, change: AuthChange) -> Result<()> {
        let caller = self.caller_settled(creds).await?;
        let cmd = Command::As {
            caller,
            cmd: Box::new(Command::Auth(change)),
        };
        match self.write(cmd).await? {
            CommandResult::Auth(_) => Ok(()),
            other => Err(Error::Internal(format!("unexpected auth result {other:?}"))),
        }
    }

    /// The roles of a user: for an admin, or the user itself.
    pub async fn user_get(&self, creds: &Credentials, name: &str) -> Result<Vec<String>> {
        let caller = self.caller_settled(creds).await?;
        self.read_barrier().await?;
        let state = self.sm.read();
        state.auth.check_user_get(caller.as_ref(), name)?;
        let user = state.auth.user(name).ok_or(AuthError::UserNotFound)?;
        Ok(user.roles.iter().cloned().collect())
    }

    /// For what etcd 3.4 lets only an admin do once auth is on (Snapshot, Hash, HashKV,
    /// Defragment): passes when auth is off or the caller holds the root role.
    pub fn check_admin(&self, creds: &Credentials) -> Result<()> {
        let unconverted = |e: Error| match e {
            Error::Auth(a) => {
                let text = a.to_string();
                let bare = text.strip_prefix("etcdserver: ").unwrap_or(&text);
                Error::MaintenanceAuth(bare.to_string())
            }
            other => other,
        };
        let caller = self.caller(creds).map_err(unconverted)?;
        let checked = self.sm.read().auth.check_admin(caller.as_ref());
        checked.map_err(|e| unconverted(e.into()))
    }

    /// Every user's name, in order: admins only.
    pub async fn user_list(&self, creds: &Credentials) -> Result<Vec<String>> {
        let caller = self.caller_settled(creds).await?;
        self.read_barrier().await?;
        let state = self.sm.read();
        state.auth.check_admin(caller.as_ref())?;
        Ok(state.auth.user_names().map(str::to_string).collect())
    }

    /// A role's permissions: for an admin, or a user holding the role.
    pub async fn role_get(&self, creds: &Credentials, name: &str) -> Result<Vec<Permission>> {
        let caller = self.caller_settled(creds).await?;
        self.read_barrier().await?;
        let state = self.sm.read();
        state.auth.check_role_get(caller.as_ref(), name)?;
        let role = state.auth.role(name).ok_or(AuthError::RoleNotFound)?;
        Ok(role
            .permissions
            .iter()
            .map(KeyPermission::to_wire)
            .collect())
    }

    /// Every role's name, in order: admins only.
    pub async fn role_list(&self, creds: &Credentials) -> Result<Vec<String>> {
        let caller = self.caller_settled(creds).await?;
        self.read_barrier().await?;
        let state = self.sm.read();
        state.auth.check_admin(caller.as_ref())?;
        Ok(state.auth.role_names().map(str::to_string).collect())
    }
}
