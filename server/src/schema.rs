//! Diesel table definitions, kept in step with `migrations/` by hand (the integration
//! tests query every table through these, so a mismatch fails them).

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        name -> Text,
        password_hash -> Nullable<Text>,
        is_instance_admin -> Bool,
        github_id -> Nullable<Int8>,
        github_token -> Nullable<Bytea>,
        password_changed_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        email_verified_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    email_verifications (token_hash) {
        token_hash -> Bytea,
        user_id -> Uuid,
        email -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        user_agent -> Text,
        ip -> Text,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Bytea,
        session_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        rotated_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        private_key -> Bytea,
        public_key -> Bytea,
        created_at -> Timestamptz,
        retired_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    setup_tokens (token_hash) {
        token_hash -> Bytea,
        created_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    workspaces (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        log_read_role -> Text,
    }
}

diesel::table! {
    memberships (workspace_id, user_id) {
        workspace_id -> Uuid,
        user_id -> Uuid,
        role -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        workspace_id -> Uuid,
        name -> Text,
        role -> Text,
        token_hash -> Bytea,
        prefix -> Text,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    invitations (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        email -> Text,
        role -> Text,
        token_hash -> Bytea,
        invited_by -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        accepted_at -> Nullable<Timestamptz>,
        accepted_by -> Nullable<Uuid>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Int8,
        workspace_id -> Nullable<Uuid>,
        actor_id -> Nullable<Uuid>,
        actor_label -> Text,
        action -> Text,
        target_type -> Text,
        target_id -> Text,
        ip -> Text,
        request_id -> Text,
        detail -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(email_verifications -> users (user_id));
diesel::joinable!(audit_log -> users (actor_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(memberships -> workspaces (workspace_id));
diesel::joinable!(api_tokens -> workspaces (workspace_id));
diesel::joinable!(invitations -> workspaces (workspace_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    email_verifications,
    sessions,
    refresh_tokens,
    signing_keys,
    setup_tokens,
    workspaces,
    memberships,
    api_tokens,
    invitations,
    audit_log,
);

diesel::table! {
    projects (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        preview_base_environment_id -> Nullable<Uuid>,
        preview_ttl_days -> Int4,
        preview_sealed_variables -> Bool,
    }
}

diesel::table! {
    environments (id) {
        id -> Uuid,
        project_id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
        kind -> Text,
        position -> Int4,
        updated_at -> Timestamptz,
        preview_repository -> Nullable<Text>,
        preview_pr -> Nullable<Int4>,
        preview_pushed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    services (id) {
        id -> Uuid,
        project_id -> Uuid,
        name -> Text,
        source_kind -> Text,
        git_url -> Nullable<Text>,
        branch -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        github_repository -> Nullable<Text>,
    }
}

diesel::joinable!(projects -> workspaces (workspace_id));
diesel::joinable!(environments -> projects (project_id));
diesel::joinable!(services -> projects (project_id));
diesel::allow_tables_to_appear_in_same_query!(projects, environments, services, workspaces);

diesel::table! {
    jobs (id) {
        id -> Int8,
        kind -> Text,
        payload -> Jsonb,
        state -> Text,
        attempts -> Int4,
        max_attempts -> Int4,
        run_at -> Timestamptz,
        locked_by -> Nullable<Text>,
        locked_until -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        dedupe_key -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    deployments (id) {
        id -> Uuid,
        service_id -> Uuid,
        environment_id -> Uuid,
        state -> Text,
        branch -> Nullable<Text>,
        commit_sha -> Nullable<Text>,
        plan -> Nullable<Jsonb>,
        reason -> Nullable<Text>,
        triggered_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        source_kind -> Text,
        upload_id -> Nullable<Uuid>,
        release_of -> Nullable<Uuid>,
        promoted_from -> Nullable<Uuid>,
    }
}

diesel::table! {
    deployment_events (id) {
        id -> Int8,
        deployment_id -> Uuid,
        from_state -> Nullable<Text>,
        to_state -> Text,
        reason -> Text,
        at -> Timestamptz,
    }
}

diesel::table! {
    service_settings (service_id, environment_id) {
        service_id -> Uuid,
        environment_id -> Uuid,
        root_dir -> Nullable<Text>,
        build_command -> Nullable<Text>,
        start_command -> Nullable<Text>,
        health_check_path -> Nullable<Text>,
        restart_policy -> Text,
        port -> Nullable<Int4>,
        memory_limit_mb -> Nullable<Int4>,
        updated_at -> Timestamptz,
        branch -> Nullable<Text>,
    }
}

diesel::table! {
    releases (deployment_id) {
        deployment_id -> Uuid,
        service_id -> Uuid,
        environment_id -> Uuid,
        path -> Text,
        plan -> Jsonb,
        commit_sha -> Nullable<Text>,
        created_at -> Timestamptz,
        pruned_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    deployment_logs (deployment_id, seq) {
        deployment_id -> Uuid,
        seq -> Int8,
        ts -> Timestamptz,
        stream -> Text,
        text -> Text,
    }
}

diesel::joinable!(deployment_events -> deployments (deployment_id));
diesel::joinable!(deployment_logs -> deployments (deployment_id));
diesel::joinable!(releases -> deployments (deployment_id));
diesel::allow_tables_to_appear_in_same_query!(deployments, deployment_events, deployment_logs, releases);
diesel::joinable!(deployments -> services (service_id));
diesel::joinable!(service_settings -> services (service_id));
diesel::allow_tables_to_appear_in_same_query!(deployments, services, service_settings);
diesel::allow_tables_to_appear_in_same_query!(deployments, projects);
diesel::allow_tables_to_appear_in_same_query!(service_settings, projects);
diesel::allow_tables_to_appear_in_same_query!(service_settings, environments);

diesel::table! {
    commits (service_id, sha) {
        service_id -> Uuid,
        sha -> Text,
        message -> Text,
        author -> Text,
    }
}

diesel::table! {
    instances (id) {
        id -> Uuid,
        deployment_id -> Uuid,
        service_id -> Uuid,
        environment_id -> Uuid,
        state -> Text,
        pid -> Nullable<Int4>,
        start_ticks -> Nullable<Int8>,
        port -> Nullable<Int4>,
        static_root -> Nullable<Text>,
        restarts -> Int4,
        last_exit_code -> Nullable<Int4>,
        started_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(instances -> deployments (deployment_id));
diesel::allow_tables_to_appear_in_same_query!(instances, deployments);
diesel::allow_tables_to_appear_in_same_query!(instances, services);
diesel::allow_tables_to_appear_in_same_query!(instances, environments);
diesel::allow_tables_to_appear_in_same_query!(instances, projects);
diesel::allow_tables_to_appear_in_same_query!(deployments, environments);

diesel::table! {
    variables (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        environment_id -> Uuid,
        service_id -> Nullable<Uuid>,
        name -> Text,
        ciphertext -> Bytea,
        sealed -> Bool,
        revision -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        updated_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    deployment_variables (deployment_id) {
        deployment_id -> Uuid,
        ciphertext -> Bytea,
        revisions -> Jsonb,
    }
}

diesel::joinable!(deployment_variables -> deployments (deployment_id));
diesel::allow_tables_to_appear_in_same_query!(deployment_variables, deployments);

diesel::table! {
    service_logs (id) {
        id -> Int8,
        service_id -> Uuid,
        environment_id -> Uuid,
        deployment_id -> Nullable<Uuid>,
        ts -> Timestamptz,
        stream -> Text,
        text -> Text,
    }
}

diesel::table! {
    log_offsets (path) {
        path -> Text,
        offset -> Int8,
    }
}

diesel::table! {
    sandbox_users (service_id, environment_id) {
        service_id -> Uuid,
        environment_id -> Uuid,
        number -> Int4,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    service_storage (service_id) {
        service_id -> Uuid,
        bytes -> Int8,
        measured_at -> Timestamptz,
    }
}

diesel::joinable!(service_storage -> services (service_id));
diesel::allow_tables_to_appear_in_same_query!(service_storage, services);
diesel::allow_tables_to_appear_in_same_query!(service_storage, projects);

diesel::table! {
    github_connections (user_id) {
        user_id -> Uuid,
        github_id -> Int8,
        login -> Text,
        token -> Bytea,
        broken_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    github_repositories (full_name) {
        full_name -> Text,
        connected_by -> Nullable<Uuid>,
        hook_id -> Nullable<Int8>,
        hook_secret -> Nullable<Bytea>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    github_deliveries (id) {
        id -> Uuid,
        delivery_id -> Text,
        event -> Text,
        action -> Nullable<Text>,
        repository -> Nullable<Text>,
        outcome -> Text,
        detail -> Text,
        project_ids -> Array<Uuid>,
        deployment_ids -> Array<Uuid>,
        payload -> Bytea,
        redelivery_of -> Nullable<Uuid>,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    github_deployments (deployment_id) {
        deployment_id -> Uuid,
        repository -> Text,
        github_id -> Nullable<Int8>,
        reported_state -> Nullable<Text>,
    }
}

diesel::table! {
    github_comments (project_id, repository, pr) {
        project_id -> Uuid,
        repository -> Text,
        pr -> Int4,
        comment_id -> Int8,
    }
}

diesel::joinable!(github_deployments -> deployments (deployment_id));
diesel::allow_tables_to_appear_in_same_query!(github_deployments, deployments);

diesel::table! {
    app_databases (id) {
        id -> Uuid,
        service_id -> Uuid,
        environment_id -> Uuid,
        driver -> Text,
        name -> Text,
        role_name -> Text,
        password_sealed -> Bytea,
        host -> Text,
        port -> Int4,
        external_id -> Nullable<Text>,
        state -> Text,
        reason -> Nullable<Text>,
        branched_from -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    backup_schedules (database_id) {
        database_id -> Uuid,
        schedule -> Text,
        keep_daily -> Int4,
        keep_weekly -> Int4,
        scheduled_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    backups (id) {
        id -> Uuid,
        database_id -> Uuid,
        state -> Text,
        trigger -> Text,
        store -> Text,
        object_key -> Text,
        size_bytes -> Nullable<Int8>,
        reason -> Nullable<Text>,
        tables -> Jsonb,
        requested_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        verified_at -> Nullable<Timestamptz>,
        pruned_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    restores (id) {
        id -> Uuid,
        backup_id -> Uuid,
        target -> Text,
        database_name -> Text,
        state -> Text,
        reason -> Nullable<Text>,
        tables -> Jsonb,
        requested_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(backups -> app_databases (database_id));
diesel::joinable!(restores -> backups (backup_id));
diesel::joinable!(app_databases -> services (service_id));
diesel::joinable!(backup_schedules -> app_databases (database_id));
diesel::allow_tables_to_appear_in_same_query!(backups, app_databases, restores, backup_schedules);
diesel::allow_tables_to_appear_in_same_query!(app_databases, services);
diesel::allow_tables_to_appear_in_same_query!(app_databases, environments);
diesel::allow_tables_to_appear_in_same_query!(app_databases, projects);
diesel::allow_tables_to_appear_in_same_query!(backups, services);
diesel::allow_tables_to_appear_in_same_query!(backups, projects);
