from typing import Annotated

from fastapi import APIRouter, Query

from service import recommend
from service.api import schemas
from service.api.deps import Json, Loaded, NotFound, body, scored_tracks_json
from service.api.ids import UserId
from service.settings import Settings


def router(settings: Settings) -> APIRouter:
    r = APIRouter(prefix="/v1/users", tags=["users"])
    Limit = Annotated[int, Query(ge=1, le=settings.max_limit)]

    @r.get(
        "/{user_id:id}/recommendations",
        response_model=schemas.Recommendations,
        responses={404: {"model": schemas.Problem}},
    )
    async def recommendations(
        user_id: UserId, loaded: Loaded, limit: Limit = settings.default_limit
    ) -> Json:
        """Tracks for one listener from their vector, leaving out what they already played,
        each with a reason."""
        b = loaded.bundle
        if b.users is None:
            raise recommend.Unavailable(f"bundle {b.version} has no users (format 1)")
        row = b.users.row_of(user_id)
        if row is None:
            raise NotFound("user", user_id)
        items = recommend.user_recommendations(
            loaded, user=row, limit=limit, artist_cap=settings.artist_cap
        )
        return body({
            "user": user_id,
            "items": scored_tracks_json(b, items, reason=[i.reason or "" for i in items]),
        })  # fmt: skip

    return r
