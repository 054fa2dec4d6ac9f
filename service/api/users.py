from fastapi import APIRouter, Depends

from service import recommend
from service.api import access, schemas
from service.api.deps import (
    NOT_FOUND,
    AppSettings,
    Json,
    ListLimit,
    Loaded,
    body,
    scored_tracks_json,
    user_row,
)
from service.api.ids import UserId

router = APIRouter(prefix="/v1/users", tags=["users"], dependencies=[Depends(access.USER)])


@router.get(
    "/{user_id:id}/recommendations",
    response_model=schemas.Recommendations,
    responses=NOT_FOUND,
)
async def recommendations(
    user_id: UserId, loaded: Loaded, settings: AppSettings, limit: ListLimit
) -> Json:
    """Tracks for one listener from their vector, leaving out what they already played,
    each with a reason."""
    b = loaded.bundle
    items = recommend.user_recommendations(
        loaded, user=user_row(b, user_id), limit=limit, artist_cap=settings.artist_cap
    )
    return body({
        "user": user_id,
        "items": scored_tracks_json(b, items, reason=[i.reason or "" for i in items]),
    })  # fmt: skip
