"""authentik API v3 compatibility suite for Portcullis.

Drives Portcullis through the official generated authentik Python client
(`authentik-client`, see requirements.txt), so every response is deserialized
and validated by authentik's own pydantic models: a missing, mistyped or
wrongly-null field fails the test.

Environment:
    PORTCULLIS_URL    base URL of a running server, e.g. http://127.0.0.1:9000
    PORTCULLIS_TOKEN  API token key of a superuser (e.g. PORTCULLIS_BOOTSTRAP_TOKEN)

Run:
    pip install -r tests/compat/requirements.txt
    PORTCULLIS_URL=http://127.0.0.1:9000 PORTCULLIS_TOKEN=... pytest tests/compat -v
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, List, Optional

import pytest

import authentik_client as ak
from authentik_client.exceptions import (
    ApiException,
    BadRequestException,
    ForbiddenException,
    NotFoundException,
    UnauthorizedException,
)
from authentik_client.models import (
    AlgEnum,
    Application,
    ApplicationRequest,
    Brand,
    BrandRequest,
    CertificateGenerationRequest,
    CertificateKeyPair,
    CertificateKeyPairKeyTypeEnum,
    CertificateKeyPairRequest,
    CurrentBrand,
    Event,
    EventActions,
    Group,
    GroupRequest,
    IntentEnum,
    Pagination,
    PatchedApplicationRequest,
    PatchedBrandRequest,
    PatchedCertificateKeyPairRequest,
    PatchedGroupRequest,
    PatchedTokenRequest,
    PatchedUserRequest,
    PolicyEngineMode,
    SessionUser,
    Token,
    TokenRequest,
    TokenView,
    UiThemeEnum,
    User,
    UserAccountRequest,
    UserPasswordSetRequest,
    UserRequest,
    UserTypeEnum,
)

EVENT_TIMEOUT = float(os.environ.get("PORTCULLIS_EVENT_TIMEOUT", "15"))


# --------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------


def _env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise RuntimeError(f"environment variable {name} must be set (see module docstring)")
    return value


def _make_client(token: Optional[str]) -> ak.ApiClient:
    base = _env("PORTCULLIS_URL").rstrip("/")
    config = ak.Configuration(host=base + "/api/v3", access_token=token)
    # self-signed HTTPS setups: allow PORTCULLIS_INSECURE=1
    if os.environ.get("PORTCULLIS_INSECURE") == "1":
        config.verify_ssl = False
    return ak.ApiClient(config)


@pytest.fixture(scope="session")
def client() -> ak.ApiClient:
    with _make_client(_env("PORTCULLIS_TOKEN")) as c:
        yield c


@pytest.fixture(scope="session")
def core(client: ak.ApiClient) -> ak.CoreApi:
    return ak.CoreApi(client)


@pytest.fixture(scope="session")
def crypto(client: ak.ApiClient) -> ak.CryptoApi:
    return ak.CryptoApi(client)


@pytest.fixture(scope="session")
def events(client: ak.ApiClient) -> ak.EventsApi:
    return ak.EventsApi(client)


@pytest.fixture(scope="session")
def me(core: ak.CoreApi) -> SessionUser:
    return core.core_users_me_retrieve()


@pytest.fixture
def cleanup():
    """Register teardown callables; run in reverse order, ignoring 404s."""
    actions: List[Callable[[], Any]] = []
    yield actions.append
    for action in reversed(actions):
        try:
            action()
        except NotFoundException:
            pass


def sfx() -> str:
    return uuid.uuid4().hex[:10]


def now() -> datetime:
    return datetime.now(timezone.utc)


def assert_aware_recent(value: datetime, slack: timedelta = timedelta(minutes=10)) -> None:
    assert isinstance(value, datetime)
    assert value.tzinfo is not None, f"datetime {value!r} has no timezone"
    assert now() - slack <= value <= now() + slack, f"{value!r} is not close to now"


def assert_single_page(p: Pagination, count: int) -> None:
    """Sanity of the pagination block of a list that fits in one page."""
    assert p.count == count
    assert p.current == 1
    assert p.total_pages == 1
    assert p.next == 0
    assert p.previous == 0
    if count == 0:
        assert p.start_index == 0 and p.end_index == 0
    else:
        assert p.start_index == 1
        assert p.end_index == count


def wait_for(fn: Callable[[], Any], timeout: float = EVENT_TIMEOUT, interval: float = 0.5) -> Any:
    """Poll fn until it returns something truthy (events may be written asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if result:
            return result
        if time.monotonic() > deadline:
            return result
        time.sleep(interval)


def same_pk(a: Any, b: Any) -> bool:
    """Event contexts store UUID pks as hex; compare loosely."""
    return str(a).replace("-", "").lower() == str(b).replace("-", "").lower()


def new_user(core: ak.CoreApi, cleanup, prefix: str = "pc", **kwargs: Any) -> User:
    s = sfx()
    req = UserRequest(
        username=f"{prefix}-{s}",
        name=kwargs.pop("name", f"Compat {s}"),
        **kwargs,
    )
    user = core.core_users_create(user_request=req)
    cleanup(lambda: core.core_users_destroy(id=user.pk))
    return user


def find_model_event(events: ak.EventsApi, action: str, app: str, model_name: str, pk: Any) -> Optional[Event]:
    def _lookup() -> Optional[Event]:
        page = events.events_events_list(action=action, ordering="-created", page_size=100)
        for e in page.results:
            model = (e.context or {}).get("model") or {}
            if (
                model.get("app") == app
                and model.get("model_name") == model_name
                and same_pk(model.get("pk"), pk)
            ):
                return e
        return None

    return wait_for(_lookup)


# --------------------------------------------------------------------------
# authentication
# --------------------------------------------------------------------------


def test_unauthenticated_and_bad_token_rejected():
    for token in (None, "definitely-not-a-valid-token-" + sfx()):
        with _make_client(token) as c:
            with pytest.raises((UnauthorizedException, ForbiddenException)):
                ak.CoreApi(c).core_users_list()


# --------------------------------------------------------------------------
# users
# --------------------------------------------------------------------------


def test_users_me(core: ak.CoreApi, me: SessionUser):
    assert isinstance(me, SessionUser)
    u = me.user
    assert isinstance(u.pk, int)
    assert u.is_superuser is True
    assert u.is_active is True
    assert u.uid and u.avatar
    assert isinstance(u.settings, dict)
    assert isinstance(u.system_permissions, list)
    assert isinstance(me.users, list)
    full = core.core_users_retrieve(id=u.pk)
    assert full.username == u.username
    assert full.uid == u.uid
    assert full.is_superuser is True


def test_users_crud(core: ak.CoreApi, cleanup):
    s = sfx()
    req = UserRequest(
        username=f"pc-user-{s}",
        name=f"Compat User {s}",
        email=f"pc-user-{s}@example.com",
        is_active=True,
        attributes={"compat": True, "nested": {"n": 1}},
        path=f"compat/{s}",
        type=UserTypeEnum.INTERNAL,
    )
    created = core.core_users_create(user_request=req)
    cleanup(lambda: core.core_users_destroy(id=created.pk))

    assert isinstance(created, User)
    assert isinstance(created.pk, int)
    assert isinstance(created.uuid, uuid.UUID)
    assert created.username == req.username
    assert created.name == req.name
    assert created.email == req.email
    assert created.is_active is True
    assert created.is_superuser is False
    assert created.attributes == {"compat": True, "nested": {"n": 1}}
    assert created.path == f"compat/{s}"
    assert created.type == UserTypeEnum.INTERNAL
    assert created.groups == []
    assert created.groups_obj == []  # include_groups defaults to true
    assert created.roles == []
    assert created.roles_obj == []  # include_roles defaults to true
    assert created.last_login is None
    assert created.uid and isinstance(created.uid, str)
    assert created.avatar.startswith(("http://", "https://", "data:"))
    assert_aware_recent(created.date_joined)
    assert_aware_recent(created.last_updated)
    assert_aware_recent(created.password_change_date)

    got = core.core_users_retrieve(id=created.pk)
    assert got.pk == created.pk
    assert got.uuid == created.uuid
    assert got.uid == created.uid
    assert got.username == created.username
    assert got.email == created.email
    assert got.date_joined == created.date_joined

    listed = core.core_users_list(username=created.username)
    assert_single_page(listed.pagination, 1)
    assert isinstance(listed.autocomplete, dict)
    assert [u.pk for u in listed.results] == [created.pk]

    by_uuid = core.core_users_list(uuid=created.uuid)
    assert [u.pk for u in by_uuid.results] == [created.pk]

    by_email = core.core_users_list(email=created.email)
    assert [u.pk for u in by_email.results] == [created.pk]

    searched = core.core_users_list(search=f"pc-user-{s}")
    assert created.pk in [u.pk for u in searched.results]

    no_groups = core.core_users_list(username=created.username, include_groups=False, include_roles=False)
    assert no_groups.results[0].groups_obj is None
    assert no_groups.results[0].roles_obj is None

    # PUT
    updated = core.core_users_update(
        id=created.pk,
        user_request=UserRequest(
            username=created.username,
            name=f"Renamed {s}",
            email=f"renamed-{s}@example.com",
            path=f"compat/{s}",
            attributes={"compat": "put"},
        ),
    )
    assert updated.pk == created.pk
    assert updated.name == f"Renamed {s}"
    assert updated.email == f"renamed-{s}@example.com"
    assert updated.attributes == {"compat": "put"}
    assert updated.last_updated >= created.last_updated

    # PATCH: only the given fields change
    patched = core.core_users_partial_update(
        id=created.pk,
        patched_user_request=PatchedUserRequest(name=f"Patched {s}", is_active=False),
    )
    assert patched.name == f"Patched {s}"
    assert patched.is_active is False
    assert patched.email == f"renamed-{s}@example.com"
    assert patched.username == created.username
    assert core.core_users_retrieve(id=created.pk).name == f"Patched {s}"

    inactive = core.core_users_list(path=f"compat/{s}", is_active=False)
    assert [u.pk for u in inactive.results] == [created.pk]
    active = core.core_users_list(path=f"compat/{s}", is_active=True)
    assert_single_page(active.pagination, 0)
    assert active.results == []

    # DELETE
    assert core.core_users_destroy(id=created.pk) is None
    with pytest.raises(NotFoundException):
        core.core_users_retrieve(id=created.pk)
    gone = core.core_users_list(username=created.username)
    assert gone.pagination.count == 0
    assert gone.results == []


def test_users_filters_and_pagination(core: ak.CoreApi, cleanup):
    s = sfx()
    path = f"compat/page-{s}"
    users = []
    for i, utype in enumerate([UserTypeEnum.INTERNAL, UserTypeEnum.INTERNAL, UserTypeEnum.EXTERNAL]):
        u = core.core_users_create(
            user_request=UserRequest(username=f"pc-page-{s}-{i}", name=f"Page {i}", path=path, type=utype)
        )
        cleanup(lambda pk=u.pk: core.core_users_destroy(id=pk))
        users.append(u)

    everything = core.core_users_list(path=path)
    assert_single_page(everything.pagination, 3)
    assert sorted(u.pk for u in everything.results) == sorted(u.pk for u in users)

    first = core.core_users_list(path=path, ordering="username", page=1, page_size=2)
    p = first.pagination
    assert (p.count, p.current, p.total_pages, p.next, p.previous) == (3, 1, 2, 2, 0)
    assert (p.start_index, p.end_index) == (1, 2)
    assert [u.username for u in first.results] == [f"pc-page-{s}-0", f"pc-page-{s}-1"]

    second = core.core_users_list(path=path, ordering="username", page=2, page_size=2)
    p = second.pagination
    assert (p.count, p.current, p.total_pages, p.next, p.previous) == (3, 2, 2, 0, 1)
    assert (p.start_index, p.end_index) == (3, 3)
    assert [u.username for u in second.results] == [f"pc-page-{s}-2"]

    desc = core.core_users_list(path=path, ordering="-username")
    assert [u.username for u in desc.results] == [f"pc-page-{s}-2", f"pc-page-{s}-1", f"pc-page-{s}-0"]

    external = core.core_users_list(path=path, type=[UserTypeEnum.EXTERNAL])
    assert [u.pk for u in external.results] == [users[2].pk]
    assert external.results[0].type == UserTypeEnum.EXTERNAL

    starts = core.core_users_list(path_startswith=f"compat/page-{s}")
    assert starts.pagination.count == 3

    assert core.core_users_list(name="Page 1", path=path).results[0].pk == users[1].pk
    assert core.core_users_list(is_superuser=False, path=path).pagination.count == 3


def test_users_set_password(core: ak.CoreApi, cleanup):
    user = new_user(core, cleanup, prefix="pc-pw")
    before = core.core_users_retrieve(id=user.pk).password_change_date
    time.sleep(1.1)  # tolerate second-resolution timestamps
    result = core.core_users_set_password_create(
        id=user.pk,
        user_password_set_request=UserPasswordSetRequest(password="Compat-" + uuid.uuid4().hex),
    )
    assert result is None  # 204
    after = core.core_users_retrieve(id=user.pk).password_change_date
    assert after > before

    with pytest.raises(NotFoundException):
        core.core_users_set_password_create(
            id=2_000_000_000,
            user_password_set_request=UserPasswordSetRequest(password="Compat-" + uuid.uuid4().hex),
        )


# --------------------------------------------------------------------------
# groups
# --------------------------------------------------------------------------


def test_groups_crud(core: ak.CoreApi, cleanup):
    s = sfx()
    created = core.core_groups_create(
        group_request=GroupRequest(name=f"pc-group-{s}", is_superuser=False, attributes={"team": "compat"})
    )
    cleanup(lambda: core.core_groups_destroy(group_uuid=created.pk))

    assert isinstance(created, Group)
    assert isinstance(created.pk, uuid.UUID)
    assert isinstance(created.num_pk, int)
    assert created.name == f"pc-group-{s}"
    assert created.is_superuser is False
    assert created.attributes == {"team": "compat"}
    assert created.users == []
    assert created.users_obj == []  # include_users defaults to true
    assert created.parents == []
    assert created.parents_obj is None  # include_parents defaults to false
    assert created.children == []
    assert created.children_obj is None  # include_children defaults to false
    assert created.roles == []
    assert created.roles_obj == []  # required, never null
    assert created.inherited_roles_obj is None  # include_inherited_roles defaults to false

    got = core.core_groups_retrieve(group_uuid=created.pk)
    assert got.pk == created.pk and got.num_pk == created.num_pk and got.name == created.name

    full = core.core_groups_retrieve(
        group_uuid=created.pk,
        include_children=True,
        include_parents=True,
        include_inherited_roles=True,
        include_users=False,
    )
    assert full.children_obj == []
    assert full.parents_obj == []
    assert full.inherited_roles_obj == []
    assert full.users_obj is None

    listed = core.core_groups_list(name=created.name)
    assert_single_page(listed.pagination, 1)
    assert isinstance(listed.autocomplete, dict)
    assert [g.pk for g in listed.results] == [created.pk]
    assert created.pk in [g.pk for g in core.core_groups_list(search=f"pc-group-{s}").results]

    updated = core.core_groups_update(
        group_uuid=created.pk,
        group_request=GroupRequest(name=f"pc-group-{s}-put", attributes={"team": "put"}),
    )
    assert updated.pk == created.pk
    assert updated.name == f"pc-group-{s}-put"
    assert updated.attributes == {"team": "put"}

    patched = core.core_groups_partial_update(
        group_uuid=created.pk,
        patched_group_request=PatchedGroupRequest(attributes={"team": "patch"}),
    )
    assert patched.name == f"pc-group-{s}-put"
    assert patched.attributes == {"team": "patch"}

    # hierarchy
    child = core.core_groups_create(group_request=GroupRequest(name=f"pc-child-{s}", parents=[created.pk]))
    cleanup(lambda: core.core_groups_destroy(group_uuid=child.pk))
    assert child.parents == [created.pk]
    parent = core.core_groups_retrieve(group_uuid=created.pk, include_children=True)
    assert parent.children == [child.pk]
    assert [c.pk for c in parent.children_obj] == [child.pk]
    assert parent.children_obj[0].group_uuid == child.pk
    assert parent.children_obj[0].name == child.name
    child_full = core.core_groups_retrieve(group_uuid=child.pk, include_parents=True)
    assert [p.pk for p in child_full.parents_obj] == [created.pk]

    assert core.core_groups_destroy(group_uuid=child.pk) is None
    assert core.core_groups_destroy(group_uuid=created.pk) is None
    with pytest.raises(NotFoundException):
        core.core_groups_retrieve(group_uuid=created.pk)
    assert core.core_groups_list(name=f"pc-group-{s}-put").pagination.count == 0


def test_groups_membership(core: ak.CoreApi, cleanup):
    s = sfx()
    group = core.core_groups_create(group_request=GroupRequest(name=f"pc-members-{s}"))
    cleanup(lambda: core.core_groups_destroy(group_uuid=group.pk))
    user = new_user(core, cleanup, prefix="pc-member")
    other = new_user(core, cleanup, prefix="pc-nonmember")

    assert core.core_groups_add_user_create(group_uuid=group.pk, user_account_request=UserAccountRequest(pk=user.pk)) is None

    u = core.core_users_retrieve(id=user.pk)
    assert u.groups == [group.pk]
    assert [g.pk for g in u.groups_obj] == [group.pk]
    assert u.groups_obj[0].name == group.name
    assert u.groups_obj[0].num_pk == group.num_pk
    assert u.is_superuser is False

    g = core.core_groups_retrieve(group_uuid=group.pk)
    assert g.users == [user.pk]
    assert [m.pk for m in g.users_obj] == [user.pk]
    assert g.users_obj[0].username == user.username
    assert g.users_obj[0].uid == user.uid

    by_member = core.core_groups_list(members_by_pk=[user.pk])
    assert group.pk in [x.pk for x in by_member.results]
    assert group.pk not in [x.pk for x in core.core_groups_list(members_by_pk=[other.pk]).results]
    by_username = core.core_groups_list(members_by_username=[user.username])
    assert group.pk in [x.pk for x in by_username.results]

    by_group_name = core.core_users_list(groups_by_name=[group.name])
    assert_single_page(by_group_name.pagination, 1)
    assert [x.pk for x in by_group_name.results] == [user.pk]
    by_group_pk = core.core_users_list(groups_by_pk=[group.pk])
    assert [x.pk for x in by_group_pk.results] == [user.pk]

    # adding twice is idempotent
    core.core_groups_add_user_create(group_uuid=group.pk, user_account_request=UserAccountRequest(pk=user.pk))
    assert core.core_groups_retrieve(group_uuid=group.pk).users == [user.pk]

    assert core.core_groups_remove_user_create(group_uuid=group.pk, user_account_request=UserAccountRequest(pk=user.pk)) is None
    u = core.core_users_retrieve(id=user.pk)
    assert u.groups == []
    assert u.groups_obj == []
    assert core.core_groups_retrieve(group_uuid=group.pk).users == []
    assert core.core_users_list(groups_by_name=[group.name]).pagination.count == 0

    with pytest.raises(NotFoundException):
        core.core_groups_add_user_create(
            group_uuid=group.pk, user_account_request=UserAccountRequest(pk=2_000_000_000)
        )
    with pytest.raises(NotFoundException):
        core.core_groups_add_user_create(
            group_uuid=uuid.uuid4(), user_account_request=UserAccountRequest(pk=user.pk)
        )

    # membership set through the writable `users` field of the group
    patched = core.core_groups_partial_update(
        group_uuid=group.pk, patched_group_request=PatchedGroupRequest(users=[user.pk, other.pk])
    )
    assert sorted(patched.users) == sorted([user.pk, other.pk])
    assert core.core_users_retrieve(id=other.pk).groups == [group.pk]


def test_superuser_group_grants_superuser(core: ak.CoreApi, cleanup):
    s = sfx()
    group = core.core_groups_create(group_request=GroupRequest(name=f"pc-admins-{s}", is_superuser=True))
    cleanup(lambda: core.core_groups_destroy(group_uuid=group.pk))
    user = new_user(core, cleanup, prefix="pc-su")
    assert user.is_superuser is False
    core.core_groups_add_user_create(group_uuid=group.pk, user_account_request=UserAccountRequest(pk=user.pk))
    assert core.core_users_retrieve(id=user.pk).is_superuser is True
    assert group.pk in [g.pk for g in core.core_groups_list(is_superuser=True, name=group.name).results]
    core.core_groups_remove_user_create(group_uuid=group.pk, user_account_request=UserAccountRequest(pk=user.pk))
    assert core.core_users_retrieve(id=user.pk).is_superuser is False


# --------------------------------------------------------------------------
# applications
# --------------------------------------------------------------------------


def test_applications_crud(core: ak.CoreApi, cleanup):
    s = sfx()
    slug = f"pc-app-{s}"
    req = ApplicationRequest(
        name=f"Compat App {s}",
        slug=slug,
        meta_launch_url=f"https://app-{s}.example.com/",
        meta_description="compat test application",
        meta_publisher="Portcullis",
        open_in_new_tab=True,
        policy_engine_mode=PolicyEngineMode.ALL,
        group="compat",
    )
    created = core.core_applications_create(application_request=req)
    cleanup(lambda: core.core_applications_destroy(slug=slug))

    assert isinstance(created, Application)
    assert isinstance(created.pk, uuid.UUID)
    assert created.pbm_uuid == created.pk
    assert created.name == req.name
    assert created.slug == slug
    assert created.provider is None
    assert created.provider_obj is None
    assert created.backchannel_providers == []
    assert created.backchannel_providers_obj == []
    assert created.launch_url == f"https://app-{s}.example.com/"
    assert created.meta_launch_url == f"https://app-{s}.example.com/"
    assert created.meta_description == "compat test application"
    assert created.meta_publisher == "Portcullis"
    assert created.open_in_new_tab is True
    assert created.policy_engine_mode == PolicyEngineMode.ALL
    assert created.group == "compat"
    assert created.meta_icon_url is None
    assert created.meta_hide is False

    got = core.core_applications_retrieve(slug=slug)
    assert got.pk == created.pk and got.name == created.name

    listed = core.core_applications_list(slug=slug)
    assert_single_page(listed.pagination, 1)
    assert isinstance(listed.autocomplete, dict)
    assert [a.slug for a in listed.results] == [slug]
    assert slug in [a.slug for a in core.core_applications_list(search=f"Compat App {s}", superuser_full_list=True).results]
    assert slug in [a.slug for a in core.core_applications_list(name=f"Compat App {s}", superuser_full_list=True).results]

    updated = core.core_applications_update(
        slug=slug,
        application_request=ApplicationRequest(name=f"Compat App {s} PUT", slug=slug, meta_launch_url=""),
    )
    assert updated.pk == created.pk
    assert updated.name == f"Compat App {s} PUT"
    assert updated.meta_launch_url == ""
    assert updated.launch_url is None

    patched = core.core_applications_partial_update(
        slug=slug,
        patched_application_request=PatchedApplicationRequest(meta_description="patched", meta_hide=True),
    )
    assert patched.meta_description == "patched"
    assert patched.meta_hide is True
    assert patched.name == f"Compat App {s} PUT"

    # renaming the slug moves the lookup key
    new_slug = f"pc-app2-{s}"
    moved = core.core_applications_partial_update(
        slug=slug, patched_application_request=PatchedApplicationRequest(slug=new_slug)
    )
    cleanup(lambda: core.core_applications_destroy(slug=new_slug))
    assert moved.slug == new_slug and moved.pk == created.pk
    with pytest.raises(NotFoundException):
        core.core_applications_retrieve(slug=slug)
    assert core.core_applications_retrieve(slug=new_slug).pk == created.pk

    with pytest.raises(BadRequestException):
        core.core_applications_create(application_request=ApplicationRequest(name="dup", slug=new_slug))

    assert core.core_applications_destroy(slug=new_slug) is None
    with pytest.raises(NotFoundException):
        core.core_applications_retrieve(slug=new_slug)


# --------------------------------------------------------------------------
# tokens
# --------------------------------------------------------------------------


def test_tokens_crud(core: ak.CoreApi, cleanup):
    s = sfx()
    owner = new_user(core, cleanup, prefix="pc-tok-owner")
    ident = f"pc-token-{s}"
    created = core.core_tokens_create(
        token_request=TokenRequest(
            identifier=ident, intent=IntentEnum.API, user=owner.pk, description="compat token", expiring=True
        )
    )
    cleanup(lambda: core.core_tokens_destroy(identifier=ident))

    assert isinstance(created, Token)
    assert isinstance(created.pk, uuid.UUID)
    assert created.identifier == ident
    assert created.intent == IntentEnum.API
    assert created.user == owner.pk
    assert created.user_obj.pk == owner.pk
    assert created.user_obj.username == owner.username
    assert created.description == "compat token"
    assert created.expiring is True
    assert created.managed is None
    assert created.expires is None or created.expires > now()
    raw = json.loads(core.core_tokens_retrieve_with_http_info(identifier=ident).raw_data)
    assert "key" not in raw, "the token key must only be exposed by view_key"

    got = core.core_tokens_retrieve(identifier=ident)
    assert got.pk == created.pk and got.user == owner.pk

    listed = core.core_tokens_list(identifier=ident)
    assert_single_page(listed.pagination, 1)
    assert isinstance(listed.autocomplete, dict)
    assert [t.identifier for t in listed.results] == [ident]
    by_owner = core.core_tokens_list(user__username=owner.username)
    assert [t.identifier for t in by_owner.results] == [ident]
    assert ident in [t.identifier for t in core.core_tokens_list(intent=IntentEnum.API, search=ident).results]

    view = core.core_tokens_view_key_retrieve(identifier=ident)
    assert isinstance(view, TokenView)
    assert isinstance(view.key, str) and len(view.key) >= 16
    assert core.core_tokens_view_key_retrieve(identifier=ident).key == view.key

    # the key authenticates as the owner
    with _make_client(view.key) as c:
        who = ak.CoreApi(c).core_users_me_retrieve()
        assert who.user.pk == owner.pk
        assert who.user.username == owner.username

    updated = core.core_tokens_update(
        identifier=ident,
        token_request=TokenRequest(identifier=ident, intent=IntentEnum.API, user=owner.pk, description="put"),
    )
    assert updated.pk == created.pk
    assert updated.description == "put"

    patched = core.core_tokens_partial_update(
        identifier=ident, patched_token_request=PatchedTokenRequest(description="patched")
    )
    assert patched.description == "patched"
    assert patched.user == owner.pk
    assert core.core_tokens_view_key_retrieve(identifier=ident).key == view.key

    assert core.core_tokens_destroy(identifier=ident) is None
    with pytest.raises(NotFoundException):
        core.core_tokens_retrieve(identifier=ident)
    with pytest.raises(NotFoundException):
        core.core_tokens_view_key_retrieve(identifier=ident)
    with _make_client(view.key) as c:
        with pytest.raises((UnauthorizedException, ForbiddenException)):
            ak.CoreApi(c).core_users_me_retrieve()


def test_tokens_reject_non_api_intent(core: ak.CoreApi, cleanup):
    ident = f"pc-bad-{sfx()}"
    cleanup(lambda: core.core_tokens_destroy(identifier=ident))
    with pytest.raises(BadRequestException):
        core.core_tokens_create(token_request=TokenRequest(identifier=ident, intent=IntentEnum.RECOVERY))


def test_non_superuser_token_scope(core: ak.CoreApi, cleanup):
    s = sfx()
    plain = new_user(core, cleanup, prefix="pc-plain")
    ident = f"pc-plain-token-{s}"
    core.core_tokens_create(token_request=TokenRequest(identifier=ident, intent=IntentEnum.API, user=plain.pk))
    cleanup(lambda: core.core_tokens_destroy(identifier=ident))
    key = core.core_tokens_view_key_retrieve(identifier=ident).key

    with _make_client(key) as c:
        api = ak.CoreApi(c)
        me = api.core_users_me_retrieve()
        assert me.user.pk == plain.pk
        assert me.user.is_superuser is False

        users = api.core_users_list()
        assert_single_page(users.pagination, 1)
        assert [u.pk for u in users.results] == [plain.pk]

        tokens = api.core_tokens_list()
        assert [t.identifier for t in tokens.results] == [ident]

        with pytest.raises(ForbiddenException):
            api.core_groups_create(group_request=GroupRequest(name=f"pc-forbidden-{s}"))
    assert core.core_groups_list(name=f"pc-forbidden-{s}").pagination.count == 0


# --------------------------------------------------------------------------
# certificate keypairs
# --------------------------------------------------------------------------


def test_certificatekeypairs(crypto: ak.CryptoApi, cleanup):
    s = sfx()
    cn = f"pc-{s}.example.com"
    gen = crypto.crypto_certificatekeypairs_generate_create(
        certificate_generation_request=CertificateGenerationRequest(
            common_name=cn, subject_alt_name=f"{cn},alt-{s}.example.com", validity_days=30, alg=AlgEnum.RSA
        )
    )
    cleanup(lambda: crypto.crypto_certificatekeypairs_destroy(kp_uuid=gen.pk))

    assert isinstance(gen, CertificateKeyPair)
    assert isinstance(gen.pk, uuid.UUID)
    assert gen.name == cn
    assert gen.private_key_available is True
    assert gen.key_type == CertificateKeyPairKeyTypeEnum.RSA
    assert gen.cert_subject is not None and f"CN={cn}" in gen.cert_subject
    assert gen.fingerprint_sha256 and gen.fingerprint_sha1
    assert gen.fingerprint_sha256 != gen.fingerprint_sha1
    assert gen.cert_expiry is not None
    assert abs(gen.cert_expiry - (now() + timedelta(days=30))) < timedelta(days=2)
    assert gen.managed is None
    assert str(gen.pk) in gen.certificate_download_url
    assert str(gen.pk) in gen.private_key_download_url

    cert = crypto.crypto_certificatekeypairs_view_certificate_retrieve(kp_uuid=gen.pk)
    assert cert.data.strip().startswith("-----BEGIN CERTIFICATE-----")
    assert cert.data.strip().endswith("-----END CERTIFICATE-----")
    key = crypto.crypto_certificatekeypairs_view_private_key_retrieve(kp_uuid=gen.pk)
    assert "PRIVATE KEY-----" in key.data

    got = crypto.crypto_certificatekeypairs_retrieve(kp_uuid=gen.pk)
    assert got.pk == gen.pk and got.fingerprint_sha256 == gen.fingerprint_sha256

    listed = crypto.crypto_certificatekeypairs_list(name=cn)
    assert_single_page(listed.pagination, 1)
    assert isinstance(listed.autocomplete, dict)
    assert [k.pk for k in listed.results] == [gen.pk]
    assert gen.pk in [k.pk for k in crypto.crypto_certificatekeypairs_list(has_key=True, search=cn).results]

    # import the generated PEMs as a new keypair
    imported = crypto.crypto_certificatekeypairs_create(
        certificate_key_pair_request=CertificateKeyPairRequest(
            name=f"pc-imported-{s}", certificate_data=cert.data, key_data=key.data
        )
    )
    cleanup(lambda: crypto.crypto_certificatekeypairs_destroy(kp_uuid=imported.pk))
    assert imported.pk != gen.pk
    assert imported.name == f"pc-imported-{s}"
    assert imported.fingerprint_sha256 == gen.fingerprint_sha256
    assert imported.fingerprint_sha1 == gen.fingerprint_sha1
    assert imported.cert_subject == gen.cert_subject
    assert imported.private_key_available is True
    assert imported.key_type == CertificateKeyPairKeyTypeEnum.RSA
    assert crypto.crypto_certificatekeypairs_view_certificate_retrieve(kp_uuid=imported.pk).data.strip() == cert.data.strip()

    # certificate only
    cert_only = crypto.crypto_certificatekeypairs_create(
        certificate_key_pair_request=CertificateKeyPairRequest(name=f"pc-certonly-{s}", certificate_data=cert.data)
    )
    cleanup(lambda: crypto.crypto_certificatekeypairs_destroy(kp_uuid=cert_only.pk))
    assert cert_only.private_key_available is False
    assert not crypto.crypto_certificatekeypairs_view_private_key_retrieve(kp_uuid=cert_only.pk).data
    no_key = crypto.crypto_certificatekeypairs_list(has_key=False, name=f"pc-certonly-{s}")
    assert [k.pk for k in no_key.results] == [cert_only.pk]

    updated = crypto.crypto_certificatekeypairs_update(
        kp_uuid=imported.pk,
        certificate_key_pair_request=CertificateKeyPairRequest(name=f"pc-imported-{s}-put", certificate_data=cert.data),
    )
    assert updated.name == f"pc-imported-{s}-put"
    assert updated.fingerprint_sha256 == gen.fingerprint_sha256
    patched = crypto.crypto_certificatekeypairs_partial_update(
        kp_uuid=imported.pk,
        patched_certificate_key_pair_request=PatchedCertificateKeyPairRequest(name=f"pc-imported-{s}-patch"),
    )
    assert patched.name == f"pc-imported-{s}-patch"
    assert patched.fingerprint_sha256 == gen.fingerprint_sha256

    with pytest.raises(BadRequestException):
        crypto.crypto_certificatekeypairs_create(
            certificate_key_pair_request=CertificateKeyPairRequest(
                name=f"pc-broken-{s}", certificate_data="-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"
            )
        )

    assert crypto.crypto_certificatekeypairs_destroy(kp_uuid=imported.pk) is None
    with pytest.raises(NotFoundException):
        crypto.crypto_certificatekeypairs_retrieve(kp_uuid=imported.pk)


def test_certificatekeypairs_generate_ecdsa(crypto: ak.CryptoApi, cleanup):
    cn = f"pc-ec-{sfx()}.example.com"
    gen = crypto.crypto_certificatekeypairs_generate_create(
        certificate_generation_request=CertificateGenerationRequest(common_name=cn, validity_days=7, alg=AlgEnum.ECDSA)
    )
    cleanup(lambda: crypto.crypto_certificatekeypairs_destroy(kp_uuid=gen.pk))
    assert gen.key_type == CertificateKeyPairKeyTypeEnum.EC
    assert gen.private_key_available is True
    assert [k.pk for k in crypto.crypto_certificatekeypairs_list(name=cn, key_type=[ak.KeyTypeEnum.EC]).results] == [gen.pk]
    assert crypto.crypto_certificatekeypairs_list(name=cn, key_type=[ak.KeyTypeEnum.RSA]).pagination.count == 0


# --------------------------------------------------------------------------
# brands
# --------------------------------------------------------------------------


def test_brands_crud_and_current(core: ak.CoreApi, cleanup):
    s = sfx()
    domain = f"pc-{s}.example.test"
    created = core.core_brands_create(
        brand_request=BrandRequest(domain=domain, default=False, branding_title=f"Compat {s}", attributes={"b": 1})
    )
    cleanup(lambda: core.core_brands_destroy(brand_uuid=created.brand_uuid))

    assert isinstance(created, Brand)
    assert isinstance(created.brand_uuid, uuid.UUID)
    assert created.domain == domain
    assert created.default is False
    assert created.branding_title == f"Compat {s}"
    assert created.attributes == {"b": 1}
    assert created.client_certificates == []
    assert created.web_certificate is None
    assert created.flow_authentication is None
    assert isinstance(created.branding_logo, str) and created.branding_logo
    assert isinstance(created.branding_favicon, str) and created.branding_favicon

    got = core.core_brands_retrieve(brand_uuid=created.brand_uuid)
    assert got.brand_uuid == created.brand_uuid and got.domain == domain

    listed = core.core_brands_list(domain=domain)
    assert_single_page(listed.pagination, 1)
    assert isinstance(listed.autocomplete, dict)
    assert [b.brand_uuid for b in listed.results] == [created.brand_uuid]
    assert created.brand_uuid in [b.brand_uuid for b in core.core_brands_list(search=domain).results]

    updated = core.core_brands_update(
        brand_uuid=created.brand_uuid,
        brand_request=BrandRequest(domain=domain, branding_title=f"Compat {s} PUT"),
    )
    assert updated.brand_uuid == created.brand_uuid
    assert updated.branding_title == f"Compat {s} PUT"

    patched = core.core_brands_partial_update(
        brand_uuid=created.brand_uuid,
        patched_brand_request=PatchedBrandRequest(branding_custom_css=".compat { color: red; }"),
    )
    assert patched.branding_custom_css == ".compat { color: red; }"
    assert patched.branding_title == f"Compat {s} PUT"

    current = core.core_brands_current_retrieve()
    assert isinstance(current, CurrentBrand)
    assert isinstance(current.matched_domain, str)
    assert isinstance(current.branding_title, str)
    assert current.ui_theme in list(UiThemeEnum)
    assert isinstance(current.ui_footer_links, list)
    assert isinstance(current.flags.flows_continuous_login, bool)

    # brand selection by Host header
    mine = core.core_brands_current_retrieve(_headers={"Host": domain})
    assert mine.matched_domain == domain
    assert mine.branding_title == f"Compat {s} PUT"
    assert mine.branding_custom_css == ".compat { color: red; }"

    assert core.core_brands_destroy(brand_uuid=created.brand_uuid) is None
    with pytest.raises(NotFoundException):
        core.core_brands_retrieve(brand_uuid=created.brand_uuid)
    assert core.core_brands_list(domain=domain).pagination.count == 0


# --------------------------------------------------------------------------
# events
# --------------------------------------------------------------------------


def test_events_model_created(core: ak.CoreApi, events: ak.EventsApi, me: SessionUser, cleanup):
    s = sfx()
    user = new_user(core, cleanup, prefix="pc-evt")
    group = core.core_groups_create(group_request=GroupRequest(name=f"pc-evt-group-{s}"))
    cleanup(lambda: core.core_groups_destroy(group_uuid=group.pk))
    app = core.core_applications_create(application_request=ApplicationRequest(name=f"Evt {s}", slug=f"pc-evt-{s}"))
    cleanup(lambda: core.core_applications_destroy(slug=app.slug))

    ev_user = find_model_event(events, "model_created", "authentik_core", "user", user.pk)
    assert ev_user is not None, "no model_created event for the new user"
    ev_group = find_model_event(events, "model_created", "authentik_core", "group", group.pk)
    assert ev_group is not None, "no model_created event for the new group"
    ev_app = find_model_event(events, "model_created", "authentik_core", "application", app.pk)
    assert ev_app is not None, "no model_created event for the new application"

    e = ev_user
    assert isinstance(e, Event)
    assert isinstance(e.pk, uuid.UUID)
    assert e.action == EventActions.MODEL_CREATED
    assert isinstance(e.app, str) and e.app
    assert e.user.get("username") == me.user.username
    assert e.user.get("pk") == me.user.pk
    assert e.context["model"]["name"]
    assert_aware_recent(e.created)
    assert e.expires is None or e.expires > e.created

    # action filter
    created_events = events.events_events_list(action="model_created", page_size=50)
    assert created_events.pagination.count >= 3
    assert isinstance(created_events.autocomplete, dict)
    assert created_events.results and all(x.action == EventActions.MODEL_CREATED for x in created_events.results)
    # newest first by default
    stamps = [x.created for x in created_events.results]
    assert stamps == sorted(stamps, reverse=True)

    # username filter
    by_user = events.events_events_list(username=me.user.username, page_size=50)
    assert by_user.pagination.count >= 3
    assert all(x.user.get("username") == me.user.username for x in by_user.results)
    assert events.events_events_list(username=f"nobody-{s}").pagination.count == 0

    # client_ip filter
    assert e.client_ip, "model_created event from an HTTP request must carry client_ip"
    by_ip = events.events_events_list(client_ip=e.client_ip, page_size=50)
    assert by_ip.pagination.count >= 1
    assert all(x.client_ip == e.client_ip for x in by_ip.results)
    assert events.events_events_list(client_ip="203.0.113.254").pagination.count == 0

    # combined
    combined = events.events_events_list(action="model_created", username=me.user.username, client_ip=e.client_ip, page_size=100)
    assert e.pk in [x.pk for x in combined.results] or combined.pagination.count > 100

    got = events.events_events_retrieve(event_uuid=e.pk)
    assert got.pk == e.pk
    assert got.action == e.action
    assert got.created == e.created
    assert got.context == e.context

    with pytest.raises(NotFoundException):
        events.events_events_retrieve(event_uuid=uuid.uuid4())


# --------------------------------------------------------------------------
# 404s for every lookup kind
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda core, crypto, events: core.core_users_retrieve(id=2_000_000_000), id="user-pk"),
        pytest.param(lambda core, crypto, events: core.core_groups_retrieve(group_uuid=uuid.uuid4()), id="group-uuid"),
        pytest.param(lambda core, crypto, events: core.core_applications_retrieve(slug=f"missing-{sfx()}"), id="app-slug"),
        pytest.param(lambda core, crypto, events: core.core_tokens_retrieve(identifier=f"missing-{sfx()}"), id="token-identifier"),
        pytest.param(lambda core, crypto, events: crypto.crypto_certificatekeypairs_retrieve(kp_uuid=uuid.uuid4()), id="kp-uuid"),
        pytest.param(lambda core, crypto, events: core.core_brands_retrieve(brand_uuid=uuid.uuid4()), id="brand-uuid"),
        pytest.param(lambda core, crypto, events: events.events_events_retrieve(event_uuid=uuid.uuid4()), id="event-uuid"),
        pytest.param(lambda core, crypto, events: core.core_users_destroy(id=2_000_000_000), id="user-destroy"),
        pytest.param(lambda core, crypto, events: core.core_groups_destroy(group_uuid=uuid.uuid4()), id="group-destroy"),
        pytest.param(
            lambda core, crypto, events: core.core_applications_partial_update(
                slug=f"missing-{sfx()}", patched_application_request=PatchedApplicationRequest(name="x")
            ),
            id="app-patch",
        ),
    ],
)
def test_not_found(core: ak.CoreApi, crypto: ak.CryptoApi, events: ak.EventsApi, call):
    with pytest.raises(NotFoundException) as info:
        call(core, crypto, events)
    assert info.value.status == 404


def test_validation_errors_are_400(core: ak.CoreApi, cleanup):
    user = new_user(core, cleanup, prefix="pc-dup")
    with pytest.raises(BadRequestException) as info:
        core.core_users_create(user_request=UserRequest(username=user.username, name="dup"))
    assert info.value.status == 400
    assert info.value.body and "username" in info.value.body
    # a page past the end is a 404 (DRF PageNumberPagination: "Invalid page.")
    with pytest.raises(NotFoundException):
        core.core_users_list(username=user.username, page=5)
    # unknown enum/uuid in a body is rejected server-side as a 400 as well
    with pytest.raises(BadRequestException):
        core.core_groups_create(group_request=GroupRequest(name=f"pc-badparent-{sfx()}", parents=[uuid.uuid4()]))


def test_blueprint_instances(client: ak.ApiClient, core: ak.CoreApi, cleanup):
    """managed/blueprints/ through the client: the built-in bootstrap, a stored blueprint
    created, applied and checked, the available files, and the export."""
    managed = ak.ManagedApi(client)
    listed = managed.managed_blueprints_list(path="builtin/system/bootstrap.yaml")
    assert_single_page(listed.pagination, 1)
    builtin = listed.results[0]
    assert builtin.status == ak.BlueprintInstanceStatusEnum.SUCCESSFUL
    assert builtin.metadata["name"] == "Default - Bootstrap"
    assert "authentik_core.user" in builtin.managed_models
    assert len(builtin.last_applied_hash) == 64
    assert_aware_recent(builtin.last_applied, slack=timedelta(days=1))

    s = sfx()
    content = f"version: 1\nentries:\n- model: authentik_core.group\n  identifiers: {{name: !Context name}}\n"
    created = managed.managed_blueprints_create(
        ak.BlueprintInstanceRequest(name=f"compat-{s}", content=content, context={"name": f"bp-group-{s}"})
    )
    cleanup(lambda: managed.managed_blueprints_destroy(instance_uuid=created.pk))
    assert created.status == ak.BlueprintInstanceStatusEnum.UNKNOWN
    applied = managed.managed_blueprints_apply_create(instance_uuid=created.pk)
    assert applied.status == ak.BlueprintInstanceStatusEnum.SUCCESSFUL
    groups = core.core_groups_list(name=f"bp-group-{s}")
    assert groups.pagination.count == 1
    cleanup(lambda: core.core_groups_destroy(group_uuid=groups.results[0].pk))
    got = managed.managed_blueprints_retrieve(instance_uuid=created.pk)
    assert got.last_applied_hash == applied.last_applied_hash
    assert isinstance(managed.managed_blueprints_available_list(), list)
    with pytest.raises(BadRequestException):
        managed.managed_blueprints_create(ak.BlueprintInstanceRequest(name=f"bad-{s}", path="../../etc/passwd"))


# --------------------------------------------------------------------------
# flows, stages, policies
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def flows_api(client: ak.ApiClient) -> ak.FlowsApi:
    return ak.FlowsApi(client)


@pytest.fixture(scope="session")
def stages_api(client: ak.ApiClient) -> ak.StagesApi:
    return ak.StagesApi(client)


@pytest.fixture(scope="session")
def policies_api(client: ak.ApiClient) -> ak.PoliciesApi:
    return ak.PoliciesApi(client)


def test_flows_and_bindings(flows_api: ak.FlowsApi, stages_api: ak.StagesApi, cleanup):
    from authentik_client.models import (
        FlowDesignationEnum,
        FlowRequest,
        FlowStageBindingRequest,
        IdentificationStageRequest,
        PasswordStageRequest,
        PatchedFlowRequest,
        UserFieldsEnum,
        UserLoginStageRequest,
    )

    s = sfx()
    flow = flows_api.flows_instances_create(
        FlowRequest(
            name=f"Login {s}",
            slug=f"login-{s}",
            title="Welcome",
            designation=FlowDesignationEnum.AUTHENTICATION,
        )
    )
    cleanup(lambda: flows_api.flows_instances_destroy(flow.slug))
    assert flow.slug == f"login-{s}"
    assert flow.export_url == f"/api/v3/flows/instances/login-{s}/export/"
    assert flow.stages == []

    pw = stages_api.stages_password_create(PasswordStageRequest(name=f"pw-{s}", backends=["authentik.core.auth.InbuiltBackend"]))
    cleanup(lambda: stages_api.stages_all_destroy(pw.pk))
    ident = stages_api.stages_identification_create(
        IdentificationStageRequest(name=f"id-{s}", user_fields=[UserFieldsEnum.USERNAME], password_stage=pw.pk)
    )
    cleanup(lambda: stages_api.stages_all_destroy(ident.pk))
    login = stages_api.stages_user_login_create(UserLoginStageRequest(name=f"login-{s}"))
    cleanup(lambda: stages_api.stages_all_destroy(login.pk))
    assert ident.password_stage == pw.pk
    assert ident.meta_model_name == "authentik_stages_identification.identificationstage"

    b1 = flows_api.flows_bindings_create(FlowStageBindingRequest(target=flow.pk, stage=ident.pk, order=10))
    b2 = flows_api.flows_bindings_create(FlowStageBindingRequest(target=flow.pk, stage=login.pk, order=20))
    assert b1.stage_obj.name == f"id-{s}"
    listed = flows_api.flows_bindings_list(target=flow.pk)
    assert [b.pk for b in listed.results] == [b1.pk, b2.pk]
    assert flows_api.flows_bindings_retrieve(b1.pk).order == 10

    got = flows_api.flows_instances_retrieve(flow.slug)
    assert got.stages == [ident.pk, login.pk]
    patched = flows_api.flows_instances_partial_update(flow.slug, PatchedFlowRequest(title="Hello"))
    assert patched.title == "Hello"
    assert [f.slug for f in flows_api.flows_instances_list(slug=flow.slug).results] == [flow.slug]

    # Stage lists: all and by type; the stage knows its flow.
    all_stages = stages_api.stages_all_list(search=s)
    assert {x.name for x in all_stages.results} == {f"pw-{s}", f"id-{s}", f"login-{s}"}
    assert stages_api.stages_identification_retrieve(ident.pk).flow_set[0].slug == flow.slug
    assert [x.pk for x in stages_api.stages_password_list(search=s).results] == [pw.pk]
    assert [x.pk for x in stages_api.stages_user_login_list(search=s).results] == [login.pk]

    with pytest.raises(BadRequestException):
        flows_api.flows_bindings_create(FlowStageBindingRequest(target=flow.pk, stage=str(uuid.uuid4()), order=1))


def test_policies_and_bindings(policies_api: ak.PoliciesApi, flows_api: ak.FlowsApi, cleanup):
    from authentik_client.models import (
        ExpressionPolicyRequest,
        FlowDesignationEnum,
        FlowRequest,
        PasswordPolicyRequest,
        PolicyBindingRequest,
        PolicyTestRequest,
    )

    s = sfx()
    flow = flows_api.flows_instances_create(
        FlowRequest(name=f"Guarded {s}", slug=f"guarded-{s}", title="Guarded", designation=FlowDesignationEnum.AUTHORIZATION)
    )
    cleanup(lambda: flows_api.flows_instances_destroy(flow.slug))
    expr = policies_api.policies_expression_create(ExpressionPolicyRequest(name=f"expr-{s}", expression="return True"))
    cleanup(lambda: policies_api.policies_all_destroy(expr.pk))
    pw = policies_api.policies_password_create(PasswordPolicyRequest(name=f"pw-{s}", length_min=10, check_have_i_been_pwned=False))
    cleanup(lambda: policies_api.policies_all_destroy(pw.pk))
    assert expr.expression == "return True"
    assert pw.length_min == 10
    assert policies_api.policies_expression_retrieve(expr.pk).name == f"expr-{s}"

    binding = policies_api.policies_bindings_create(PolicyBindingRequest(target=flow.policybindingmodel_ptr_id, policy=expr.pk, order=0))
    cleanup(lambda: policies_api.policies_bindings_destroy(binding.pk))
    assert binding.policy_obj is not None and binding.policy_obj.name == f"expr-{s}"
    assert binding.group_obj is None and binding.user_obj is None
    listed = policies_api.policies_bindings_list(target=flow.policybindingmodel_ptr_id)
    assert [b.pk for b in listed.results] == [binding.pk]
    assert policies_api.policies_bindings_retrieve(binding.pk).order == 0
    assert flows_api.flows_instances_retrieve(flow.slug).policies == [expr.pk]

    names = {p.name for p in policies_api.policies_all_list(search=s).results}
    assert names == {f"expr-{s}", f"pw-{s}"}
    unbound = {p.name for p in policies_api.policies_all_list(search=s, bindings__isnull=True).results}
    assert unbound == {f"pw-{s}"}

    me_pk = ak.CoreApi(policies_api.api_client).core_users_me_retrieve().user.pk
    result = policies_api.policies_all_test_create(expr.pk, PolicyTestRequest(user=me_pk, context={}))
    assert result.passing is True

    with pytest.raises(BadRequestException):
        policies_api.policies_expression_create(ExpressionPolicyRequest(name=f"bad-{s}", expression="return (("))


# --------------------------------------------------------------------------
# OAuth2 providers and scope mappings
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def providers_api(client: ak.ApiClient) -> ak.ProvidersApi:
    return ak.ProvidersApi(client)


@pytest.fixture(scope="session")
def propertymappings_api(client: ak.ApiClient) -> ak.PropertymappingsApi:
    return ak.PropertymappingsApi(client)


def test_oauth2_providers_and_scope_mappings(
    providers_api: ak.ProvidersApi,
    propertymappings_api: ak.PropertymappingsApi,
    flows_api: ak.FlowsApi,
    core: ak.CoreApi,
    cleanup,
):
    from authentik_client.models import (
        ClientTypeEnum,
        MatchingModeEnum,
        OAuth2ProviderRequest,
        PatchedOAuth2ProviderRequest,
        PatchedScopeMappingRequest,
        RedirectURIRequest,
        ScopeMappingRequest,
        SubModeEnum,
    )

    s = sfx()
    authz = flows_api.flows_instances_list(slug="default-provider-authorization-explicit-consent").results[0]
    inval = flows_api.flows_instances_list(slug="default-provider-invalidation-flow").results[0]

    # The managed defaults, as authentik ships them.
    managed = propertymappings_api.propertymappings_provider_scope_list(managed__isnull=False, page_size=100)
    scopes = {m.scope_name: m for m in managed.results}
    assert {"openid", "email", "profile", "offline_access", "entitlements"} <= set(scopes)
    assert scopes["email"].managed == "goauthentik.io/providers/oauth2/scope-email"

    mapping = propertymappings_api.propertymappings_provider_scope_create(
        ScopeMappingRequest(name=f"dept-{s}", scope_name=f"dept{s}", expression='return {"dept": "x"}', description="Department")
    )
    cleanup(lambda: propertymappings_api.propertymappings_provider_scope_destroy(mapping.pk))
    assert mapping.meta_model_name == "authentik_providers_oauth2.scopemapping"
    patched_mapping = propertymappings_api.propertymappings_provider_scope_partial_update(
        mapping.pk, PatchedScopeMappingRequest(description="Dept.")
    )
    assert patched_mapping.description == "Dept."
    assert propertymappings_api.propertymappings_provider_scope_retrieve(mapping.pk).scope_name == f"dept{s}"

    provider = providers_api.providers_oauth2_create(
        OAuth2ProviderRequest(
            name=f"oidc-{s}",
            authorization_flow=authz.pk,
            invalidation_flow=inval.pk,
            redirect_uris=[RedirectURIRequest(matching_mode=MatchingModeEnum.STRICT, url="https://app.example.com/cb")],
            property_mappings=[scopes["openid"].pk, scopes["email"].pk, mapping.pk],
        )
    )
    cleanup(lambda: providers_api.providers_oauth2_destroy(provider.pk))
    assert provider.client_type == ClientTypeEnum.CONFIDENTIAL
    assert provider.sub_mode == SubModeEnum.HASHED_USER_ID
    assert len(provider.client_id) == 40 and len(provider.client_secret) == 128
    assert provider.redirect_uris[0].url == "https://app.example.com/cb"
    assert set(map(str, provider.property_mappings)) == {str(scopes["openid"].pk), str(scopes["email"].pk), str(mapping.pk)}

    patched = providers_api.providers_oauth2_partial_update(
        provider.pk, PatchedOAuth2ProviderRequest(client_type=ClientTypeEnum.PUBLIC, access_token_validity="minutes=10")
    )
    assert patched.client_type == ClientTypeEnum.PUBLIC
    assert patched.access_token_validity == "minutes=10"
    assert providers_api.providers_oauth2_retrieve(provider.pk).client_secret == provider.client_secret
    assert [p.pk for p in providers_api.providers_oauth2_list(client_id=provider.client_id).results] == [provider.pk]
    assert provider.pk in [p.pk for p in providers_api.providers_all_list(page_size=100).results]
    assert any(t.model_name == "oauth2provider" for t in providers_api.providers_all_types_list())

    app = core.core_applications_create(ApplicationRequest(name=f"App {s}", slug=f"app-{s}", provider=provider.pk))
    cleanup(lambda: core.core_applications_destroy(app.slug))
    assert app.provider == provider.pk
    assert providers_api.providers_oauth2_retrieve(provider.pk).assigned_application_slug == f"app-{s}"

    with pytest.raises(BadRequestException):
        providers_api.providers_oauth2_create(
            OAuth2ProviderRequest(
                name=f"bad-{s}",
                authorization_flow=authz.pk,
                invalidation_flow=inval.pk,
                redirect_uris=[RedirectURIRequest(matching_mode=MatchingModeEnum.STRICT, url="javascript:alert(1)")],
            )
        )
