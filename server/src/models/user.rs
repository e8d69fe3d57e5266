use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, SelectableHelper as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::schema::users;

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub is_instance_admin: bool,
    pub created_at: DateTime<Utc>,
    pub email_verified_at: Option<DateTime<Utc>>,
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: Option<&'a str>,
    pub is_instance_admin: bool,
    /// The email is proven already (GitHub verified it).
    pub email_verified: bool,
}

impl User {
    /// The AAD of a user's sealed GitHub token (binds the ciphertext to its row).
    pub fn github_token_aad(user: Uuid) -> Vec<u8> {
        format!("railyard:user:{user}:github_token").into_bytes()
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<User> {
        users::table.find(id).select(User::as_select()).first(conn).await
    }

    pub async fn find_by_email(
        conn: &mut AsyncPgConnection,
        email: &str,
    ) -> diesel::QueryResult<Option<User>> {
        users::table
            .filter(users::email.eq(email))
            .select(User::as_select())
            .first(conn)
            .await
            .optional()
    }

    pub async fn any_exist(conn: &mut AsyncPgConnection) -> diesel::QueryResult<bool> {
        Ok(users::table
            .select(users::id)
            .first::<Uuid>(conn)
            .await
            .optional()?
            .is_some())
    }

    pub async fn create(conn: &mut AsyncPgConnection, new: NewUser<'_>) -> diesel::QueryResult<User> {
        diesel::insert_into(users::table)
            .values((
                users::id.eq(Uuid::new_v4()),
                users::email.eq(new.email),
                users::name.eq(new.name),
                users::password_hash.eq(new.password_hash),
                users::is_instance_admin.eq(new.is_instance_admin),
                users::email_verified_at.eq(new.email_verified.then(Utc::now)),
            ))
            .returning(User::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn set_password(conn: &mut AsyncPgConnection, id: Uuid, hash: &str) -> diesel::QueryResult<()> {
        let now = chrono::Utc::now();
        diesel::update(users::table.find(id))
            .set((
                users::password_hash.eq(hash),
                users::password_changed_at.eq(now),
                users::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        Ok(())
    }

    pub fn to_api(&self) -> railyard_shared::auth::User {
        railyard_shared::auth::User {
            id: self.id.into(),
            email: self.email.clone(),
            name: self.name.clone(),
            email_verified: self.email_verified_at.is_some(),
            is_instance_admin: self.is_instance_admin,
            created_at: self.created_at,
        }
    }
}
