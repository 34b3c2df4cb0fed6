from django.urls import path

from . import views

urlpatterns = [
    path("learn/", views.learn_index, name="learn_index"),
    path("learn/<slug:page_id>/", views.learn_page, name="learn_page"),
    # the same pages inside the patient's app (/me/: kept on the phone to read offline)
    path("me/learn/", views.learn_index, name="my_learn_index"),
    path("me/learn/<slug:page_id>/", views.learn_page, name="my_learn_page"),
    path("patients/<int:patient_id>/education/assign/", views.assign, name="education_assign"),
    path("patients/<int:patient_id>/decision/new/", views.decision_new, name="decision_new"),
    path("patients/<int:patient_id>/decisions/", views.decision_list, name="decision_list"),
]
